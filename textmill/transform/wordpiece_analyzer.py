"""Learns a BERT WordPiece vocabulary in TensorFlow Transform's analyze phase.

`learn_wordpiece` is called inside a `preprocessing_fn`. Its Beam stage
normalises and pre-tokenizes every text as BERT does (lowercase, NFD with
accents stripped, split on whitespace and punctuation), sums the word counts
per word across workers, trains the `tokenizers` library's WordPiece on
those counts on one worker and writes `wordpiece_vocab.txt`, one token per
line (the line number is the id); or, given `init_from`, copies a
checkpoint's `vocab.txt` instead. The path comes back as an asset tensor:
build the in-graph tokenizer's lookup table from it in the same
`preprocessing_fn`, and the file travels with the transform graph.

Example:

>>> def preprocessing_fn(inputs):
...     vocab_path = learn_wordpiece(inputs["text"], vocab_size=8000)
...     tft.annotate_asset("wordpiece_vocab", VOCAB_FILENAME)
...     ...
"""

from __future__ import annotations

import collections
import logging
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

VOCAB_FILENAME = "wordpiece_vocab.txt"
# The file name a Hugging Face BERT checkpoint keeps its vocabulary under.
HF_VOCAB_FILENAME = "vocab.txt"
# Where `textmill convert bert` puts it inside a keras-hub preset.
PRESET_VOCAB_PATH = os.path.join("assets", "tokenizer", HF_VOCAB_FILENAME)
PAD = "[PAD]"
UNK = "[UNK]"
CLS = "[CLS]"
SEP = "[SEP]"
MASK = "[MASK]"
# A learned vocabulary gives these ids 0..4, in this order.
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
SUBWORD_PREFIX = "##"
# Occurrences of one word written into one training text.
_REPEATS_PER_TEXT = 1024


def learn_wordpiece(
    texts: tf.Tensor,
    vocab_size: int,
    init_from: str | None = None,
    min_frequency: int = 2,
    name: str | None = None,
) -> tf.Tensor:
    """Learns (or imports) a BERT WordPiece vocabulary over the dataset.

    Args:
        texts: a 1-D string tensor, the texts of a batch.
        vocab_size: the largest vocabulary to learn, special tokens
            included. Ignored with `init_from`.
        init_from: a `vocab.txt` file, or a directory holding one (a Hugging
            Face checkpoint) or holding `assets/tokenizer/vocab.txt` (a
            preset written by `textmill convert bert`), to import instead of
            learning.
        min_frequency: the fewest occurrences a pair needs to be merged.
        name: the analyzer's name scope.

    Returns:
        A scalar string tensor naming the vocabulary file, a transform
        asset with basename `wordpiece_vocab.txt`.

    Raises:
        ValueError: if `texts` is not 1-D, `vocab_size` cannot hold the
            special tokens, or `init_from` has no vocabulary or one without
            BERT's special tokens.
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    if texts.shape.rank != 1:
        raise ValueError(
            f"texts has shape {texts.shape}; pass a 1-D string tensor "
            "(reshape a [batch, 1] feature with tf.reshape(texts, [-1]))."
        )
    if init_from is not None:
        init_from = resolve_vocab_file(init_from)
        special_token_ids(init_from)
    elif vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size={vocab_size} cannot hold the special tokens "
            f"{', '.join(SPECIAL_TOKENS)} and any word; use at least a few "
            "thousand."
        )
    # Before analysis the lookup table reads this default; it must not be
    # empty (a table cannot be initialised from an empty file).
    default_vocab = "".join(f"{t}\n" for t in SPECIAL_TOKENS).encode()
    (vocab_path,) = tft.experimental.ptransform_analyzer(
        inputs=[texts],
        ptransform=_LearnWordPiece(vocab_size, init_from, min_frequency),
        output_dtypes=[tf.string],
        output_shapes=[[]],
        output_asset_default_values=[default_vocab],
        name=name or "learn_wordpiece",
    )
    if not tf.inside_function():
        # TF1 graphs track asset paths only through this collection.
        tf.compat.v1.add_to_collection(
            tf.compat.v1.GraphKeys.ASSET_FILEPATHS, vocab_path
        )
    return vocab_path


def resolve_vocab_file(init_from: str) -> str:
    """Finds the `vocab.txt` of a checkpoint.

    Args:
        init_from: a vocabulary file, a Hugging Face checkpoint directory
            or a preset directory written by `textmill convert bert`.

    Returns:
        The vocabulary file's path.

    Raises:
        ValueError: if there is no vocabulary at `init_from`.
    """
    if not tf.io.gfile.isdir(init_from):
        if tf.io.gfile.exists(init_from):
            return init_from
    else:
        for relative in (HF_VOCAB_FILENAME, PRESET_VOCAB_PATH):
            path = os.path.join(init_from, relative)
            if tf.io.gfile.exists(path):
                return path
    raise ValueError(
        f"init_from={init_from!r} holds no WordPiece vocabulary; pass a "
        f"vocab.txt file, or a directory with {HF_VOCAB_FILENAME} (a Hugging "
        f"Face checkpoint) or {PRESET_VOCAB_PATH} (a converted preset)."
    )


def special_token_ids(vocab_path: str) -> dict[str, int]:
    """Reads the ids of BERT's special tokens from a vocabulary file.

    Args:
        vocab_path: a `vocab.txt`, one token per line.

    Returns:
        `{token: id}` for `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]` and `[MASK]`.

    Raises:
        ValueError: if one of them is missing.
    """
    tokens = read_vocab(vocab_path)
    ids = {token: index for index, token in enumerate(tokens)}
    missing = [token for token in SPECIAL_TOKENS if token not in ids]
    if missing:
        raise ValueError(
            f"{vocab_path} ({len(tokens)} tokens) lacks the special tokens "
            f"{', '.join(missing)}; pass a BERT WordPiece vocabulary."
        )
    return {token: ids[token] for token in SPECIAL_TOKENS}


def read_vocab(vocab_path: str) -> list[str]:
    """The tokens of a vocabulary file, in id order.

    Args:
        vocab_path: one token per line.

    Returns:
        The tokens.
    """
    with tf.io.gfile.GFile(vocab_path, "rb") as f:
        text = f.read().decode("utf-8")
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def train_wordpiece(
    word_counts: dict[str, int], vocab_size: int, min_frequency: int
) -> list[str]:
    """Trains a BERT WordPiece vocabulary on word counts.

    Args:
        word_counts: normalised, pre-tokenized word -> occurrences (see
            `count_words`).
        vocab_size: the largest vocabulary wanted, special tokens included.
        min_frequency: the fewest occurrences a pair needs to be merged.

    Returns:
        The tokens in id order: the special tokens (ids 0..4), the
        continuation characters (`##` marks a word continuation), the
        characters, then the learned subwords. The same counts always give
        the same vocabulary.
    """
    # The trainer numbers continuation characters (`##e`) in hash-map
    # order, and ids break ties between equally frequent merges, so the
    # vocabulary would change from run to run. Registering them up front,
    # sorted, fixes their ids and makes training deterministic.
    continuations = sorted({c for word in word_counts for c in word[1:]})
    tokenizer = _bert_tokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[
            *SPECIAL_TOKENS,
            *(SUBWORD_PREFIX + c for c in continuations),
        ],
        continuing_subword_prefix=SUBWORD_PREFIX,
        show_progress=False,
    )
    tokenizer.train_from_iterator(_texts_from_counts(word_counts), trainer)
    vocab = tokenizer.get_vocab()
    return sorted(vocab, key=vocab.__getitem__)


def count_words(texts: Iterable[str]) -> collections.Counter:
    """Counts BERT's pre-tokens of normalised texts.

    Args:
        texts: raw texts.

    Returns:
        word -> occurrences, after lowercasing, NFD accent stripping and
        splitting on whitespace and punctuation.
    """
    tokenizer = _bert_tokenizer()
    counts = collections.Counter()
    for text in texts:
        normalized = tokenizer.normalizer.normalize_str(text)
        counts.update(
            word
            for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized)
        )
    return counts


def _bert_tokenizer() -> Tokenizer:
    """An untrained BERT WordPiece tokenizer (uncased normalisation)."""
    tokenizer = Tokenizer(models.WordPiece(unk_token=UNK))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=True,
        lowercase=True,
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer


def _texts_from_counts(word_counts: dict[str, int]) -> Iterator[str]:
    """Texts with the given word counts: each word repeated, space-separated
    (a BERT pre-token holds no space, so repeats stay separate words)."""
    for word in sorted(word_counts):
        count = word_counts[word]
        for start in range(0, count, _REPEATS_PER_TEXT):
            yield " ".join([word] * min(_REPEATS_PER_TEXT, count - start))


def _write_vocab(tokens: Sequence[str], out_dir: str) -> str:
    """Writes tokens one per line under a fresh directory; returns the path."""
    directory = os.path.join(out_dir, f"wordpiece-{uuid.uuid4().hex}")
    tf.io.gfile.makedirs(directory)
    path = os.path.join(directory, VOCAB_FILENAME)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write("".join(f"{token}\n" for token in tokens).encode("utf-8"))
    return path


class _LearnWordPiece(tft_beam.experimental.PTransformAnalyzer):
    """Batches of texts -> a one-element PCollection: the vocabulary path."""

    def __init__(
        self, vocab_size: int, init_from: str | None, min_frequency: int
    ):
        super().__init__()
        self._vocab_size = vocab_size
        self._init_from = init_from
        self._min_frequency = min_frequency

    def expand(self, batches: beam.PCollection) -> tuple:
        out_dir = self.base_temp_dir
        if self._init_from is not None:
            path = (
                batches.pipeline
                | "Start" >> beam.Create([self._init_from])
                | "ImportVocab" >> beam.Map(_import_vocab, out_dir)
            )
        else:
            path = (
                batches
                | "CountWords" >> beam.FlatMap(_count_batch_words)
                | "SumCounts" >> beam.CombinePerKey(sum)
                | "CollectCounts" >> beam.combiners.ToList()
                | "TrainWordPiece"
                >> beam.Map(
                    _train_and_write,
                    vocab_size=self._vocab_size,
                    min_frequency=self._min_frequency,
                    out_dir=out_dir,
                )
            )
        return (path,)


def _count_batch_words(batch: Sequence[np.ndarray]) -> Iterable:
    (texts,) = batch
    return count_words(
        text.decode("utf-8", errors="replace") for text in texts.ravel()
    ).items()


def _train_and_write(
    word_counts: list[tuple[str, int]],
    vocab_size: int,
    min_frequency: int,
    out_dir: str,
) -> str:
    counts = dict(word_counts)
    logging.info(
        "Training a WordPiece vocabulary on %s distinct words (%s in all).",
        len(counts),
        sum(counts.values()),
    )
    tokens = train_wordpiece(counts, vocab_size, min_frequency)
    path = _write_vocab(tokens, out_dir)
    logging.info("Wrote %s WordPiece tokens to %s.", len(tokens), path)
    return path


def _import_vocab(vocab_path: str, out_dir: str) -> str:
    logging.info("Importing the WordPiece vocabulary %s.", vocab_path)
    return _write_vocab(read_vocab(vocab_path), out_dir)
