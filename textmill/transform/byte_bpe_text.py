"""Transform's preprocessing_fn for language models: raw text -> BPE ids.

The vocabulary is learned from the analyzed split in the analyze phase (or
imported from a checkpoint), and ids come from an in-graph tokenizer whose
tables are initialised from those files. The same graph tokenizes serving
requests, so training and serving cannot skew.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from textmill.features import INPUT_IDS_FEATURE, TEXT_FEATURE
from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer
from textmill.transform.bpe_analyzer import (
    MERGES_FILENAME,
    VOCAB_FILENAME,
    learn_byte_bpe,
)

# Keys under which the vocabulary files are found again in the transform
# output (`TFTransformOutput.vocabulary_file_by_name`).
VOCAB_ASSET = "bpe_vocab"
MERGES_ASSET = "bpe_merges"
DEFAULT_SPECIAL_TOKENS = ("<|endoftext|>",)


def dense_text(text) -> tf.Tensor:
    """The raw text feature as a 1-D string tensor, whatever its encoding
    in the schema (fixed length [batch], [batch, 1] or VarLen sparse)."""
    if isinstance(text, tf.sparse.SparseTensor):
        text = tf.sparse.to_dense(text, default_value="")
    return tf.reshape(text, [-1])


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """Tokenizes `text` into `input_ids` (a VarLen int64 feature).

    Args:
        inputs: raw features; must contain `text`.
        custom_config: `vocab_size`, `min_frequency`, optional
            `init_from` (a directory with vocab.json and merges.txt) and
            `special_tokens` (ids 0, 1, ... of a learned vocabulary).

    Returns:
        `{"input_ids": SparseTensor[int64, (batch, None)]}`.
    """
    text = dense_text(inputs[TEXT_FEATURE])
    vocab_path, merges_path = learn_byte_bpe(
        text,
        vocab_size=int(custom_config["vocab_size"]),
        init_from=custom_config.get("init_from") or None,
        min_frequency=int(custom_config.get("min_frequency", 2)),
        special_tokens=tuple(
            custom_config.get("special_tokens", DEFAULT_SPECIAL_TOKENS)
        ),
    )
    tft.annotate_asset(VOCAB_ASSET, VOCAB_FILENAME)
    tft.annotate_asset(MERGES_ASSET, MERGES_FILENAME)
    token_ids = ByteBPETokenizer(vocab_path, merges_path).tokenize(text)
    return {INPUT_IDS_FEATURE: token_ids.to_sparse()}
