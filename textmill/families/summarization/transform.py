"""Transform's preprocessing_fn for summarization: (document, summary) -> ids.

Each example becomes one sequence, GPT-2's "TL;DR:" prompt format,

    ids(document) + ids("\\nTL;DR:") + ids(" " + summary) + <|endoftext|>

with a loss mask that is 1 only on the summary and end-of-text tokens, so a
causal LM fine-tuned on it learns to continue a prompt with its summary.
Document and summary are stripped of surrounding whitespace. Because GPT-2's
pre-tokenizer never joins a non-space character with the newline after it,
nor ":" with the space after it, the pieces' ids equal the ids of the whole
text: the prefix is exactly the tokenization of `summarization_prompt(
document)`, the prompt to generate from at serving time.

The vocabulary is learned over documents and summaries (or imported with
`init_from`) exactly as for causal LMs (`causal_lm`), under the same asset
names.

The raw features are TextExampleGen's with a target field: `text` (the
document) and `target` (the summary). Both also pass through, normalised
as ingested, as `document` and `reference`, so validation can generate from
the document and score the generated summary against the reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tensorflow_transform as tft

from textmill.features import (
    DOCUMENT_FEATURE,
    INPUT_IDS_FEATURE,
    LOSS_MASK_FEATURE,
    REFERENCE_FEATURE,
    TARGET_FEATURE,
    TEXT_FEATURE,
)
from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer
from textmill.transform.bpe_analyzer import (
    MERGES_FILENAME,
    VOCAB_FILENAME,
    learn_byte_bpe,
)
from textmill.transform.byte_bpe_text import (
    MERGES_ASSET,
    VOCAB_ASSET,
    dense_text,
)

PROMPT_SEPARATOR = "\nTL;DR:"
END_OF_TEXT = "<|endoftext|>"


def summarization_prompt(documents) -> tf.Tensor:
    """The prompts to summarise `documents` from, a 1-D string tensor.

    Args:
        documents: a 1-D string tensor.

    Returns:
        Each document stripped of surrounding whitespace, then "\\nTL;DR:".
    """
    return tf.strings.join([tf.strings.strip(documents), PROMPT_SEPARATOR])


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """Tokenizes `(document, summary)` into `input_ids` and `loss_mask`.

    Args:
        inputs: raw features; must contain `text` (the document) and
            `target` (its summary).
        custom_config: `vocab_size`, `min_frequency`, optional `init_from`
            (a directory with vocab.json and merges.txt) and optional
            `sequence_length`: the longest sequence to emit. Longer examples
            lose the end of their document first, then the end of their
            summary; the separator and end-of-text are always kept.

    Returns:
        `{"input_ids": ..., "loss_mask": ...}`, VarLen int64 features of
        equal length per example, and the stripped `document` and
        `reference` strings.
    """
    documents = tf.strings.strip(dense_text(inputs[TEXT_FEATURE]))
    references = tf.strings.strip(dense_text(inputs[TARGET_FEATURE]))
    # The model continues "TL;DR:" with a space, as GPT-2 does.
    summaries = tf.where(
        tf.strings.length(references) > 0,
        tf.strings.join([" ", references]),
        references,
    )
    vocab_path, merges_path = learn_byte_bpe(
        tf.concat([documents, summaries], axis=0),
        vocab_size=int(custom_config["vocab_size"]),
        init_from=custom_config.get("init_from") or None,
        min_frequency=int(custom_config.get("min_frequency", 2)),
    )
    tft.annotate_asset(VOCAB_ASSET, VOCAB_FILENAME)
    tft.annotate_asset(MERGES_ASSET, MERGES_FILENAME)
    tokenizer = ByteBPETokenizer(vocab_path, merges_path)
    # One tokenizer call for the three pieces of every example.
    batch_size = tf.shape(documents, out_type=tf.int64)[0]
    ids = tokenizer.tokenize(
        tf.concat(
            [documents, tf.fill([batch_size], PROMPT_SEPARATOR), summaries],
            axis=0,
        )
    )  # [3 * batch, (tokens)]
    document_ids = ids[:batch_size]
    separator_ids = ids[batch_size : 2 * batch_size]
    summary_ids = ids[2 * batch_size :]
    end_ids = end_of_text_ids(tokenizer, batch_size)
    sequence_length = custom_config.get("sequence_length")
    if sequence_length:
        # Tokens left for document and summary.
        budget = tf.maximum(
            int(sequence_length) - separator_ids.row_lengths() - 1, 0
        )
        summary_kept = tf.minimum(summary_ids.row_lengths(), budget)
        summary_ids = first_tokens(summary_ids, summary_kept)
        document_ids = first_tokens(document_ids, budget - summary_kept)
    prompt_ids = tf.concat([document_ids, separator_ids], axis=1)
    target_ids = tf.concat([summary_ids, end_ids], axis=1)
    loss_mask = tf.concat(
        [tf.zeros_like(prompt_ids), tf.ones_like(target_ids)], axis=1
    )
    input_ids = tf.concat([prompt_ids, target_ids], axis=1)
    return {
        INPUT_IDS_FEATURE: input_ids.to_sparse(),
        LOSS_MASK_FEATURE: loss_mask.to_sparse(),
        DOCUMENT_FEATURE: documents,
        REFERENCE_FEATURE: references,
    }


def end_of_text_ids(
    tokenizer: ByteBPETokenizer,
    batch_size,
    end_tokens: Sequence[str] = (END_OF_TEXT,),
) -> tf.RaggedTensor:
    """[batch, 1]: the end-of-text id once per row, to close each target.

    Args:
        tokenizer: the in-graph tokenizer over the run's vocabulary.
        batch_size: int64 scalar, the rows.
        end_tokens: end-of-text tokens in order of preference; the first
            the vocabulary has closes the targets.

    Raises:
        InvalidArgumentError (when run): the vocabulary has none of
            `end_tokens`.
    """
    ids = tokenizer.token_to_id(list(end_tokens))  # [tokens], -1 if absent
    end_id = tf.gather(ids, tf.argmax(ids >= 0))
    with tf.control_dependencies(
        [
            tf.debugging.assert_non_negative(
                end_id,
                message=f"The vocabulary has none of {', '.join(end_tokens)}; "
                "learn it with the default special tokens or import a "
                "vocabulary that has one.",
            )
        ]
    ):
        # [batch] -> [batch, 1]
        ids = tf.expand_dims(tf.fill([batch_size], end_id), 1)
    return tf.RaggedTensor.from_tensor(ids)


def first_tokens(ids: tf.RaggedTensor, counts: tf.Tensor) -> tf.RaggedTensor:
    """The first `counts[i]` tokens of each row `i` of `ids`."""
    positions = tf.ragged.range(ids.row_lengths())  # [batch, (tokens)]
    return tf.ragged.boolean_mask(ids, positions < tf.expand_dims(counts, 1))
