"""Learns a byte-level BPE vocabulary in TensorFlow Transform's analyze phase.

`learn_byte_bpe` is called inside a `preprocessing_fn`. Its Beam stage
counts GPT-2 pre-tokenizer words over the whole dataset (per batch, then
summed per word across workers), trains the `tokenizers` library's BPE on
those counts on one worker, and writes `vocab.txt` + `merges.txt` in line
format; or, given `init_from`, imports a Hugging Face checkpoint's
`vocab.json` + `merges.txt` instead. The two file paths come back as asset
tensors: hand them to `ByteBPETokenizer` in the same `preprocessing_fn`, and
the files travel with the transform graph.

Example:

>>> def preprocessing_fn(inputs):
...     vocab, merges = learn_byte_bpe(inputs["text"], vocab_size=8000)
...     ids = ByteBPETokenizer(vocab, merges).tokenize(inputs["text"])
...     return {"input_ids": ids.to_sparse()}
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam

from textmill.tokenization.bpe_files import (
    DEFAULT_SPECIAL_TOKENS,
    HF_MERGES_FILENAME,
    HF_VOCAB_FILENAME,
    MERGES_FILENAME,
    VOCAB_FILENAME,
    BpeFiles,
    count_words,
    import_hf_bpe,
    texts_from_word_counts,
    train_byte_bpe,
)
from textmill.tokenization.byte_alphabet import byte_to_unicode

__all__ = ["MERGES_FILENAME", "VOCAB_FILENAME", "learn_byte_bpe"]


def learn_byte_bpe(
    texts: tf.Tensor,
    vocab_size: int,
    init_from: str | None = None,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    name: str | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Learns (or imports) a byte-level BPE over the whole dataset.

    Args:
        texts: a 1-D string tensor, the documents of a batch.
        vocab_size: the largest vocabulary to learn, special tokens and the
            256 byte tokens included.
        init_from: a directory (local or gs://) holding a Hugging Face
            `vocab.json` and `merges.txt`, itself or in `assets/tokenizer/`
            (a preset of `textmill convert longformer`), to import instead
            of learning;
            `vocab_size`, `min_frequency` and `special_tokens` then do not
            apply.
        min_frequency: the fewest occurrences a pair needs to be merged.
        special_tokens: tokens given the first ids, e.g. `<|endoftext|>`.
        name: the analyzer's name scope.

    Returns:
        `(vocab_path, merges_path)`: scalar string tensors naming the
        line-format `vocab.txt` and `merges.txt`, both transform assets.

    Raises:
        ValueError: if `texts` is not 1-D, or `init_from` lacks a file.
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    if texts.shape.rank != 1:
        raise ValueError(
            f"texts has shape {texts.shape}; pass the documents as a 1-D "
            "string tensor (reshape a [batch, 1] feature with "
            "tf.reshape(texts, [-1]))."
        )
    if init_from is not None:
        init_from = hf_bpe_dir(init_from)
    # Before analysis the tokenizer reads these defaults: the special and
    # byte tokens, and no merges (one empty line). The vocabulary must not
    # be empty: a lookup table cannot be initialised from an empty file.
    default_vocab = "".join(
        f"{token}\n" for token in [*special_tokens, *byte_to_unicode()]
    ).encode("utf-8")
    vocab_path, merges_path = tft.experimental.ptransform_analyzer(
        inputs=[texts],
        ptransform=_LearnByteBpe(
            vocab_size=vocab_size,
            init_from=init_from,
            min_frequency=min_frequency,
            special_tokens=tuple(special_tokens),
        ),
        output_dtypes=[tf.string, tf.string],
        output_shapes=[[], []],
        output_asset_default_values=[default_vocab, b"\n"],
        name=name or "learn_byte_bpe",
    )
    return vocab_path, merges_path


# Where a converted keras-hub preset keeps its tokenizer files.
PRESET_TOKENIZER_DIR = os.path.join("assets", "tokenizer")


def hf_bpe_dir(init_from: str) -> str:
    """The directory of a checkpoint's `vocab.json` and `merges.txt`.

    Args:
        init_from: a Hugging Face checkpoint or preset directory that holds
            both files, itself or in `assets/tokenizer/`.

    Raises:
        ValueError: neither place holds both files.
    """
    for directory in (init_from, os.path.join(init_from, PRESET_TOKENIZER_DIR)):
        if all(
            tf.io.gfile.exists(os.path.join(directory, filename))
            for filename in (HF_VOCAB_FILENAME, HF_MERGES_FILENAME)
        ):
            return directory
    raise ValueError(
        f"init_from={init_from!r} has no {HF_VOCAB_FILENAME} and "
        f"{HF_MERGES_FILENAME}, nor has its {PRESET_TOKENIZER_DIR}; pass a "
        "directory with a Hugging Face vocab.json and merges.txt."
    )


class _LearnByteBpe(tft_beam.experimental.PTransformAnalyzer):
    """Batches of texts -> (vocab.txt path, merges.txt path) PCollections."""

    def __init__(
        self,
        vocab_size: int,
        init_from: str | None,
        min_frequency: int,
        special_tokens: tuple[str, ...],
    ):
        super().__init__()
        self._vocab_size = vocab_size
        self._init_from = init_from
        self._min_frequency = min_frequency
        self._special_tokens = special_tokens

    def expand(self, batches: beam.PCollection) -> tuple:
        out_dir = self.base_temp_dir
        if self._init_from is not None:
            files = (
                batches.pipeline
                | "Start" >> beam.Create([self._init_from])
                | "ImportHfBpe" >> beam.Map(_import_checkpoint, out_dir)
            )
        else:
            files = (
                batches
                | "CountWords" >> beam.FlatMap(_count_batch_words)
                | "SumCounts" >> beam.CombinePerKey(sum)
                | "CollectCounts" >> beam.combiners.ToList()
                | "TrainBpe"
                >> beam.Map(
                    _train_from_counts,
                    vocab_size=self._vocab_size,
                    out_dir=out_dir,
                    min_frequency=self._min_frequency,
                    special_tokens=self._special_tokens,
                )
            )
        return (
            files | "VocabPath" >> beam.Map(lambda f: f.vocab_path),
            files | "MergesPath" >> beam.Map(lambda f: f.merges_path),
        )


def _count_batch_words(batch: Sequence[np.ndarray]) -> Iterable:
    """(texts,) batch -> (word, count) pairs of its words."""
    (texts,) = batch
    return count_words(
        text.decode("utf-8", errors="replace") for text in texts.ravel()
    ).items()


def _train_from_counts(
    word_counts: list[tuple[str, int]],
    vocab_size: int,
    out_dir: str,
    min_frequency: int,
    special_tokens: tuple[str, ...],
) -> BpeFiles:
    counts: Mapping[str, int] = dict(word_counts)
    logging.info(
        "Training a byte-level BPE on %s distinct words (%s in all).",
        len(counts),
        sum(counts.values()),
    )
    return train_byte_bpe(
        texts_from_word_counts(counts),
        vocab_size=vocab_size,
        out_dir=out_dir,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
    )


def _import_checkpoint(init_from: str, out_dir: str) -> BpeFiles:
    logging.info("Importing the byte-level BPE of %s.", init_from)
    return import_hf_bpe(
        os.path.join(init_from, HF_VOCAB_FILENAME),
        os.path.join(init_from, HF_MERGES_FILENAME),
        out_dir,
    )
