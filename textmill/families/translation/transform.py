"""Transform's preprocessing_fn for translation: (source, target) -> ids.

Each example becomes the byte-level BPE ids of its source sentence (the
encoder's input) and of its target sentence followed by end-of-text (what
the decoder learns to emit: `<|endoftext|>`, or `</s>` in an imported BART
vocabulary), each cut to `sequence_length` tokens. One
vocabulary is learned over sources and targets together (or imported with
`init_from`), under the asset names every byte-level BPE family uses, so
the exported model's tokenizer reads the same files.

The raw features are TextExampleGen's with a target field: `text` (the
source) and `target` (its translation). Both also pass through, stripped,
as `document` and `reference`, so validation can translate the one and
score the translation against the other.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from textmill.families.summarization.transform import (
    END_OF_TEXT,
    end_of_text_ids,
    first_tokens,
)
from textmill.features import (
    DOCUMENT_FEATURE,
    REFERENCE_FEATURE,
    SOURCE_IDS_FEATURE,
    TARGET_FEATURE,
    TARGET_IDS_FEATURE,
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

# End-of-text tokens in order of preference: the vocabularies the pipeline
# learns have `<|endoftext|>`; BART's (imported from `textmill convert
# bart`) end sentences with `</s>`, which is also its decoder's start token.
END_TOKENS = (END_OF_TEXT, "</s>")


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """Tokenizes `(source, target)` into `source_ids` and `target_ids`.

    Args:
        inputs: raw features; must contain `text` (the source) and
            `target` (its translation).
        custom_config: `vocab_size`, `min_frequency`, optional `init_from`
            (a directory with vocab.json and merges.txt) and
            `sequence_length`: the most tokens per side (the target's
            end-of-text included; a longer target loses its end, not its
            end-of-text).

    Returns:
        VarLen int64 `source_ids` and `target_ids`, and the stripped
        `document` (source) and `reference` (target) strings.
    """
    sources = tf.strings.strip(dense_text(inputs[TEXT_FEATURE]))
    targets = tf.strings.strip(dense_text(inputs[TARGET_FEATURE]))
    vocab_path, merges_path = learn_byte_bpe(
        tf.concat([sources, targets], axis=0),
        vocab_size=int(custom_config["vocab_size"]),
        init_from=custom_config.get("init_from") or None,
        min_frequency=int(custom_config.get("min_frequency", 2)),
    )
    tft.annotate_asset(VOCAB_ASSET, VOCAB_FILENAME)
    tft.annotate_asset(MERGES_ASSET, MERGES_FILENAME)
    tokenizer = ByteBPETokenizer(vocab_path, merges_path)
    batch_size = tf.shape(sources, out_type=tf.int64)[0]
    ids = tokenizer.tokenize(tf.concat([sources, targets], axis=0))
    source_ids, target_ids = ids[:batch_size], ids[batch_size:]
    end_ids = end_of_text_ids(tokenizer, batch_size, END_TOKENS)
    length = int(custom_config["sequence_length"])
    source_ids = first_tokens(
        source_ids, tf.fill([batch_size], tf.constant(length, tf.int64))
    )
    target_ids = tf.concat(
        [
            first_tokens(
                target_ids,
                tf.fill([batch_size], tf.constant(length - 1, tf.int64)),
            ),
            end_ids,
        ],
        axis=1,
    )
    return {
        SOURCE_IDS_FEATURE: source_ids.to_sparse(),
        TARGET_IDS_FEATURE: target_ids.to_sparse(),
        DOCUMENT_FEATURE: sources,
        REFERENCE_FEATURE: targets,
    }
