"""The Hugging Face `tokenizer.json` a LiteRT-LM bundle carries.

Built from a vocabulary's Hugging Face files (`vocab.json` +
`merges.txt`, as a keras-hub preset holds them): GPT-2's byte-level BPE,
the pre-tokenizer `train_byte_bpe` learns with (no prefix space), a
byte-level decoder, and the end-of-text token as a special token, so the
runtime's ids are the in-graph tokenizer's.
"""

from __future__ import annotations

import os

import tensorflow as tf
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from textmill.tokenization.bpe_files import (
    DEFAULT_SPECIAL_TOKENS,
    HF_MERGES_FILENAME,
    HF_VOCAB_FILENAME,
)

TOKENIZER_JSON = "tokenizer.json"


def build_hf_tokenizer(vocab_dir: str) -> Tokenizer:
    """The byte-level BPE tokenizer of `vocab_dir`'s HF files.

    Args:
        vocab_dir: a folder with `vocab.json` and `merges.txt`.

    Returns:
        A `tokenizers.Tokenizer`.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: the end-of-text token is not in the vocabulary.
    """
    paths = [
        os.path.join(vocab_dir, name)
        for name in (HF_VOCAB_FILENAME, HF_MERGES_FILENAME)
    ]
    for path in paths:
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(
                f"{path!r} does not exist: pass a folder with vocab.json and "
                "merges.txt (a keras-hub preset written by the Trainer or "
                "`textmill convert gpt2`)."
            )
    tokenizer = Tokenizer(models.BPE.from_file(*paths))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
        add_prefix_space=False, use_regex=True
    )
    tokenizer.decoder = decoders.ByteLevel()
    for token in DEFAULT_SPECIAL_TOKENS:
        if tokenizer.token_to_id(token) is None:
            raise ValueError(
                f"{token!r} is not in {paths[0]!r}: the vocabulary must "
                "hold the end-of-text token."
            )
    tokenizer.add_special_tokens(list(DEFAULT_SPECIAL_TOKENS))
    return tokenizer
