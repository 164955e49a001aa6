"""Transform's preprocessing_fn for next sentence prediction (BERT packing).

Two raw strings in, one BERT input out: `[CLS] A [SEP] B [SEP]`, padded to
`sequence_length`, with segment ids (0 for `[CLS] A [SEP]`, 1 for
`B [SEP]`) and a padding mask. The WordPiece vocabulary is learned over
both segments in the analyze phase (or imported from a checkpoint) and the
ids come from tensorflow_text's `BertTokenizer` over a lookup table read
from that file, so the transform graph tokenizes serving requests exactly
as it tokenized the training data.

The ids equal Hugging Face's `BertTokenizerFast(vocab_file,
do_lower_case=True)` called as `tokenizer(a, b, truncation=True,
max_length=sequence_length, padding="max_length")`, which are also the
original BERT uncased tokenizer's. Two tensorflow_text defaults differ from
it and are replaced:

- `BertTokenizer(lower_case=True)` case-folds with NFKC, which rewrites
  compatibility characters (`…` becomes `...`, `ﬁ` becomes `fi`), and it
  splits words at format characters (zero-width space, soft hyphen) that
  BERT deletes. The text is therefore normalised here as BERT does
  (whitespace, control characters, NFD without accents, lowercase) and
  tokenized with `lower_case=False`.
- `RoundRobinTrimmer` gives the odd token of an odd budget to the first
  segment; BERT's "longest_first" truncation gives it to the longer one
  (the second, on a tie). `truncate_longest_first` does the latter.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text
import tensorflow_transform as tft

from textmill.features import (
    IS_NEXT_FEATURE,
    PADDING_MASK_FEATURE,
    SEGMENT_IDS_FEATURE,
    SENTENCE_A_FEATURE,
    SENTENCE_B_FEATURE,
    TOKEN_IDS_FEATURE,
)
from textmill.transform.byte_bpe_text import dense_text
from textmill.transform.wordpiece_analyzer import (
    CLS,
    PAD,
    SEP,
    UNK,
    VOCAB_FILENAME,
    learn_wordpiece,
)

# Key under which the vocabulary file is found again in the transform
# output (`TFTransformOutput.vocabulary_file_by_name`).
VOCAB_ASSET = "wordpiece_vocab"
# `[CLS]` and two `[SEP]`.
NUM_SPECIAL_TOKENS = 3


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """Tokenizes and packs sentence pairs into fixed-length BERT inputs.

    Args:
        inputs: raw features `sentence_a` and `sentence_b` (strings) and,
            when training, the label `is_next` (int).
        custom_config: `sequence_length` (packed length, `[CLS]` and both
            `[SEP]` included); `vocab_size` (default 8000) and
            `min_frequency` (default 2) for a learned vocabulary; optional
            `init_from` (a `vocab.txt`, a Hugging Face checkpoint directory
            or a converted preset) to import the vocabulary instead.

    Returns:
        `token_ids`, `segment_ids` and `padding_mask` (int64, `[batch,
        sequence_length]`) and `is_next` (int64, `[batch]`) when given.

    Raises:
        ValueError: if `sequence_length` leaves no room for text.
    """
    sequence_length = int(custom_config["sequence_length"])
    if sequence_length <= NUM_SPECIAL_TOKENS:
        raise ValueError(
            f"sequence_length={sequence_length} leaves no room for text "
            f"after {NUM_SPECIAL_TOKENS} special tokens; use e.g. 128."
        )
    sentence_a = dense_text(inputs[SENTENCE_A_FEATURE])
    sentence_b = dense_text(inputs[SENTENCE_B_FEATURE])
    vocab_path = learn_wordpiece(
        tf.concat([sentence_a, sentence_b], axis=0),
        vocab_size=int(custom_config.get("vocab_size", 8000)),
        init_from=custom_config.get("init_from") or None,
        min_frequency=int(custom_config.get("min_frequency", 2)),
    )
    tft.annotate_asset(VOCAB_ASSET, VOCAB_FILENAME)
    outputs = pack_sentence_pairs(
        sentence_a, sentence_b, vocab_path, sequence_length
    )
    if IS_NEXT_FEATURE in inputs:
        label = inputs[IS_NEXT_FEATURE]
        if isinstance(label, tf.sparse.SparseTensor):
            label = tf.sparse.to_dense(label)
        outputs[IS_NEXT_FEATURE] = tf.reshape(tf.cast(label, tf.int64), [-1])
    return outputs


def pack_sentence_pairs(
    sentence_a: tf.Tensor,
    sentence_b: tf.Tensor,
    vocab_path: tf.Tensor | str,
    sequence_length: int,
) -> dict[str, tf.Tensor]:
    """Tokenizes two batches of strings and packs them as BERT inputs.

    Args:
        sentence_a: `[batch]` strings, the first segments.
        sentence_b: `[batch]` strings, the second segments.
        vocab_path: a WordPiece vocabulary file, one token per line, with
            `[PAD]`, `[UNK]`, `[CLS]` and `[SEP]`.
        sequence_length: the packed length.

    Returns:
        `token_ids`, `segment_ids` and `padding_mask`, int64 `[batch,
        sequence_length]`.
    """
    table = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            vocab_path,
            tf.string,
            tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64,
            tf.lookup.TextFileIndex.LINE_NUMBER,
        ),
        default_value=-1,
    )
    tokenizer = tf_text.BertTokenizer(
        table, token_out_type=tf.int64, unknown_token=UNK, lower_case=False
    )
    # [batch, words, pieces] -> [batch, pieces]
    ids_a = tokenizer.tokenize(normalize_uncased(sentence_a))
    ids_b = tokenizer.tokenize(normalize_uncased(sentence_b))
    ids_a, ids_b = ids_a.merge_dims(-2, -1), ids_b.merge_dims(-2, -1)
    ids_a, ids_b = truncate_longest_first(
        ids_a, ids_b, sequence_length - NUM_SPECIAL_TOKENS
    )
    cls_id, sep_id, pad_id = tf.unstack(
        table.lookup(tf.constant([CLS, SEP, PAD]))
    )
    token_ids, segment_ids = tf_text.combine_segments(
        [ids_a, ids_b], start_of_sequence_id=cls_id, end_of_segment_id=sep_id
    )
    token_ids, padding_mask = tf_text.pad_model_inputs(
        token_ids, sequence_length, pad_value=pad_id
    )
    segment_ids, _ = tf_text.pad_model_inputs(segment_ids, sequence_length)
    return {
        TOKEN_IDS_FEATURE: token_ids,
        SEGMENT_IDS_FEATURE: segment_ids,
        PADDING_MASK_FEATURE: padding_mask,
    }


def normalize_uncased(text: tf.Tensor) -> tf.Tensor:
    """Normalises text as BERT's uncased tokenizer does before splitting.

    Args:
        text: strings, any shape.

    Returns:
        The strings with tabs, line breaks and space separators as spaces,
        control, format and private-use characters deleted, accents
        stripped (NFD without combining marks) and letters lowercased.
    """
    text = tf.strings.regex_replace(text, r"[\t\n\r\p{Zs}]", " ")
    text = tf.strings.regex_replace(text, r"[\p{Cc}\p{Cf}\p{Co}\x{FFFD}]", "")
    text = tf.strings.regex_replace(
        tf_text.normalize_utf8(text, "NFD"), r"\p{Mn}", ""
    )
    return tf.strings.lower(text, encoding="utf-8")


def truncate_longest_first(
    ids_a: tf.RaggedTensor, ids_b: tf.RaggedTensor, budget: int
) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """Cuts the tails of two segments to `budget` tokens together.

    As Hugging Face's "longest_first" truncation: a pair that fits is kept;
    if only the longer segment must be cut, it keeps what the shorter one
    leaves; if both must be cut, the shorter keeps `budget // 2` and the
    longer the rest (on equal lengths, the second is the longer).

    Args:
        ids_a: `[batch, (tokens)]` first segments.
        ids_b: `[batch, (tokens)]` second segments.
        budget: tokens kept per pair, in both segments together.

    Returns:
        The truncated `(ids_a, ids_b)`.
    """
    length_a = ids_a.row_lengths()
    length_b = ids_b.row_lengths()
    swap = length_a > length_b
    shorter = tf.where(swap, length_b, length_a)
    longer = tf.where(
        shorter > budget, shorter, tf.maximum(shorter, budget - shorter)
    )
    both_cut = shorter + longer > budget
    shorter = tf.where(both_cut, tf.constant(budget // 2, tf.int64), shorter)
    longer = tf.where(
        both_cut, tf.constant(budget // 2 + budget % 2, tf.int64), longer
    )
    fits = length_a + length_b <= budget
    keep_a = tf.where(fits, length_a, tf.where(swap, longer, shorter))
    keep_b = tf.where(fits, length_b, tf.where(swap, shorter, longer))
    return _keep_first(ids_a, keep_a), _keep_first(ids_b, keep_b)


def _keep_first(ids: tf.RaggedTensor, keep: tf.Tensor) -> tf.RaggedTensor:
    """The first `keep[i]` tokens of each row `i`."""
    positions = tf.ragged.range(ids.row_lengths())
    return tf.ragged.boolean_mask(ids, positions < tf.expand_dims(keep, 1))
