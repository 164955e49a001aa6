"""Byte-level BPE vocabulary files: train, import, export.

textmill keeps a byte-level BPE vocabulary in two plain-text files, the
"line format" that in-graph lookup tables read directly:

- `vocab.txt`: one token per line; the line number (from 0) is the token id.
- `merges.txt`: one merge `left right` per line; the line number is the
  merge rank (lower merges first). There is no `#version` header.

Tokens are written in the byte-level alphabet (`byte_alphabet`), so no token
holds a space or a line break. Hugging Face keeps the same vocabulary as
`vocab.json` (token -> id) and `merges.txt` (with a `#version` header);
`import_hf_bpe` and `export_hf_bpe` convert between the two.

Every file is read and written with `tf.io.gfile` (local paths or gs://),
and written atomically: to a temporary name first, then renamed.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence

import tensorflow as tf
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from textmill.tokenization.byte_alphabet import (
    byte_to_unicode,
    symbols_to_bytes,
)

VOCAB_FILENAME = "vocab.txt"
MERGES_FILENAME = "merges.txt"
HF_VOCAB_FILENAME = "vocab.json"
HF_MERGES_FILENAME = "merges.txt"
HF_MERGES_HEADER = "#version: 0.2"
DEFAULT_SPECIAL_TOKENS = ("<|endoftext|>",)
# Occurrences of one word written into one training text by
# `texts_from_word_counts`.
_REPEATS_PER_TEXT = 1024
# One-byte words written between the repeats of a word; each is its own
# pre-token and, being a single symbol, adds no pair to the BPE statistics.
_SEPARATORS = ("0", "a")


@dataclasses.dataclass(frozen=True)
class BpeFiles:
    """The two line-format files of a byte-level BPE vocabulary.

    Args:
        vocab_path: `vocab.txt`, one token per line (line number = id).
        merges_path: `merges.txt`, one `left right` merge per line (line
            number = rank).

    Example:

    >>> files = train_byte_bpe(texts, vocab_size=1000, out_dir="/tmp/bpe")
    >>> files.token_id("<|endoftext|>")
    0
    """

    vocab_path: str
    merges_path: str

    def read_vocab(self) -> list[str]:
        """Returns the tokens, in id order."""
        return _read_lines(self.vocab_path)

    def read_merges(self) -> list[tuple[str, str]]:
        """Returns the merges as `(left, right)` pairs, in rank order.

        Raises:
            ValueError: if a line is not two tokens separated by one space.
        """
        return [
            _parse_merge(line, self.merges_path, number)
            for number, line in enumerate(_read_lines(self.merges_path))
        ]

    def vocab_size(self) -> int:
        """Returns the number of tokens."""
        return len(self.read_vocab())

    def token_id(self, token: str) -> int:
        """Returns the id of `token`.

        Raises:
            KeyError: if `token` is not in the vocabulary.
        """
        for token_id, candidate in enumerate(self.read_vocab()):
            if candidate == token:
                return token_id
        raise KeyError(
            f"token={token!r} is not in {self.vocab_path}; special tokens "
            "must be given to train_byte_bpe(special_tokens=...)."
        )


def count_words(texts: Iterable[str]) -> collections.Counter:
    """Counts the pre-tokens (GPT-2 regex words) of `texts`.

    Args:
        texts: documents.

    Returns:
        A Counter from each word (plain text, e.g. `" hello"`) to the number
        of times it occurs.
    """
    pre_tokenizer = _pre_tokenizer()
    symbol_counts = collections.Counter()
    for text in texts:
        symbol_counts.update(
            word for word, _ in pre_tokenizer.pre_tokenize_str(text)
        )
    return collections.Counter(
        {
            symbols_to_bytes(symbols).decode("utf-8"): count
            for symbols, count in symbol_counts.items()
        }
    )


def texts_from_word_counts(word_counts: Mapping[str, int]) -> Iterator[str]:
    """Training texts whose word counts are `word_counts`.

    Training BPE on these texts gives the same vocabulary and merges as
    training on the documents the counts came from, while handing the
    trainer about 1/1000 as many strings: each word is repeated in one text,
    its repeats separated by a one-byte word (`0` or `a`) that adds no pair
    to the statistics. Words that a separator would not keep apart (e.g.
    whitespace runs) are yielded one occurrence per text, and one-byte
    words, which hold no pair, are skipped.

    Args:
        word_counts: word -> number of occurrences, e.g. from `count_words`.

    Yields:
        Training texts.
    """
    pre_tokenizer = _pre_tokenizer()
    for word, count in word_counts.items():
        if len(word.encode("utf-8")) <= 1:
            continue
        separator = _separator_for(word, pre_tokenizer)
        if separator is None:
            for _ in range(count):
                yield word
            continue
        for start in range(0, count, _REPEATS_PER_TEXT):
            repeats = min(_REPEATS_PER_TEXT, count - start)
            yield (word + separator) * repeats


def train_byte_bpe(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
) -> BpeFiles:
    """Trains a byte-level BPE with the `tokenizers` library.

    The model is GPT-2's: the ByteLevel pre-tokenizer without a prefix
    space, the full 256-byte initial alphabet (every byte has a token, so
    nothing is ever unknown), no unknown token. Ids: the special tokens
    first, then the 256 byte tokens, then one token per merge.

    Args:
        texts: training documents.
        vocab_size: the largest vocabulary wanted, special tokens and the
            256 byte tokens included (fewer if the merges run out).
        out_dir: directory for `vocab.txt` and `merges.txt` (local or gs://).
        min_frequency: the fewest occurrences a pair needs to be merged.
        special_tokens: tokens given the first ids, e.g. `<|endoftext|>`.

    Returns:
        The written files.

    Raises:
        ValueError: if `vocab_size` cannot hold the special tokens and the
            256 byte tokens.
    """
    smallest = len(special_tokens) + len(byte_to_unicode())
    if vocab_size < smallest:
        raise ValueError(
            f"vocab_size={vocab_size} cannot hold the {len(special_tokens)} "
            f"special tokens and the 256 byte tokens; use at least "
            f"{smallest}."
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = _pre_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    with tempfile.TemporaryDirectory() as hf_dir:
        vocab_json, merges_txt = tokenizer.model.save(hf_dir)
        files = import_hf_bpe(vocab_json, merges_txt, out_dir)
    logging.info(
        "Trained a byte-level BPE of %s tokens into %s.",
        tokenizer.get_vocab_size(),
        out_dir,
    )
    return files


def import_hf_bpe(vocab_json: str, merges_txt: str, out_dir: str) -> BpeFiles:
    """Converts Hugging Face `vocab.json` + `merges.txt` to line format.

    Args:
        vocab_json: path of a JSON object token -> id (ids 0..n-1).
        merges_txt: path of the merges, optionally under a `#version` header.
        out_dir: directory for `vocab.txt` and `merges.txt`.

    Returns:
        The written files.

    Raises:
        ValueError: if the ids are not exactly 0..n-1, a token is empty or
            holds a line break, or a merge is malformed or names a token
            (or a merged token) missing from the vocabulary.
    """
    try:
        vocab = json.loads(_read_text(vocab_json))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{vocab_json} is not valid JSON ({error}); pass a Hugging Face "
            "vocab.json, a JSON object token -> id."
        ) from None
    tokens = _tokens_in_id_order(vocab, vocab_json)
    lines = _read_lines(merges_txt)
    first = 1 if lines and lines[0].startswith("#version") else 0
    merges = [
        _parse_merge(line, merges_txt, number)
        for number, line in enumerate(lines[first:], start=first)
    ]
    return write_bpe_files(tokens, merges, out_dir, source=merges_txt)


def export_hf_bpe(files: BpeFiles, out_dir: str) -> tuple[str, str]:
    """Writes line-format files as Hugging Face `vocab.json` + `merges.txt`.

    Args:
        files: line-format files.
        out_dir: directory to write to; not the directory of
            `files.merges_path`, whose name the Hugging Face file shares.

    Returns:
        `(vocab_json_path, merges_txt_path)`.

    Raises:
        ValueError: if `out_dir` would overwrite `files.merges_path`.
    """
    merges_path = os.path.join(out_dir, HF_MERGES_FILENAME)
    if _same_path(merges_path, files.merges_path):
        raise ValueError(
            f"out_dir={out_dir!r} would overwrite {files.merges_path}; pass "
            "another directory."
        )
    vocab_path = os.path.join(out_dir, HF_VOCAB_FILENAME)
    vocab = {token: index for index, token in enumerate(files.read_vocab())}
    tf.io.gfile.makedirs(out_dir)
    _write_text(vocab_path, json.dumps(vocab, ensure_ascii=False))
    _write_text(
        merges_path,
        "".join(
            f"{line}\n"
            for line in [HF_MERGES_HEADER]
            + [f"{left} {right}" for left, right in files.read_merges()]
        ),
    )
    return vocab_path, merges_path


def write_bpe_files(
    tokens: Sequence[str],
    merges: Sequence[tuple[str, str]],
    out_dir: str,
    source: str = "merges",
) -> BpeFiles:
    """Checks a vocabulary and writes it in line format.

    Args:
        tokens: the tokens, in id order.
        merges: `(left, right)` pairs, in rank order.
        out_dir: directory for `vocab.txt` and `merges.txt`.
        source: where the merges came from, for error messages.

    Returns:
        The written files.

    Raises:
        ValueError: if a token is empty, repeated or holds a line break, or
            a merge names a token (or a merged token) missing from `tokens`.
    """
    known = set()
    for token_id, token in enumerate(tokens):
        if not token or "\n" in token or "\r" in token:
            raise ValueError(
                f"Token id {token_id} is {token!r}; tokens must be non-empty "
                "and hold no line break. Remove it from the vocabulary."
            )
        if token in known:
            raise ValueError(
                f"Token {token!r} appears twice (again as id {token_id}); "
                "each token must have one id."
            )
        known.add(token)
    for rank, (left, right) in enumerate(merges):
        for part in (left, right, left + right):
            if part not in known:
                raise ValueError(
                    f"{source}: merge {rank} `{left} {right}` needs token "
                    f"{part!r}, which is not in the vocabulary; the merges "
                    "must come from the same tokenizer as the vocabulary."
                )
    tf.io.gfile.makedirs(out_dir)
    files = BpeFiles(
        vocab_path=os.path.join(out_dir, VOCAB_FILENAME),
        merges_path=os.path.join(out_dir, MERGES_FILENAME),
    )
    _write_text(files.vocab_path, "".join(f"{token}\n" for token in tokens))
    _write_text(
        files.merges_path,
        "".join(f"{left} {right}\n" for left, right in merges),
    )
    return files


def _pre_tokenizer() -> pre_tokenizers.ByteLevel:
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def _separator_for(word: str, pre_tokenizer) -> str | None:
    """A separator that keeps repeats of `word` apart as pre-tokens."""
    symbols = "".join(byte_to_unicode()[byte] for byte in word.encode())
    for separator in _SEPARATORS:
        pieces = [
            piece
            for piece, _ in pre_tokenizer.pre_tokenize_str(
                (word + separator) * 2
            )
        ]
        if pieces == [symbols, separator, symbols, separator]:
            return separator
    return None


def _tokens_in_id_order(vocab, path: str) -> list[str]:
    if not isinstance(vocab, dict) or not all(
        isinstance(token_id, int) and not isinstance(token_id, bool)
        for token_id in vocab.values()
    ):
        raise ValueError(
            f"{path} must be a JSON object mapping each token to an integer "
            "id, as Hugging Face's vocab.json is."
        )
    by_id = {}
    for token, token_id in vocab.items():
        if token_id in by_id:
            raise ValueError(
                f"{path}: tokens {by_id[token_id]!r} and {token!r} share id "
                f"{token_id}; each id must name one token."
            )
        by_id[token_id] = token
    missing = sorted(set(range(len(by_id))) - set(by_id))
    if missing:
        raise ValueError(
            f"{path}: ids must be exactly 0..{len(by_id) - 1} but id "
            f"{missing[0]} is missing (ids run from {min(by_id)} to "
            f"{max(by_id)}); renumber the vocabulary contiguously from 0."
        )
    return [by_id[token_id] for token_id in range(len(by_id))]


def _parse_merge(line: str, path: str, number: int) -> tuple[str, str]:
    parts = line.split(" ")
    if len(parts) != 2 or not all(parts):
        raise ValueError(
            f"{path} line {number + 1} is {line!r}; each merge must be two "
            "tokens separated by one space."
        )
    return parts[0], parts[1]


def _read_text(path: str) -> str:
    with tf.io.gfile.GFile(path, "rb") as handle:
        return handle.read().decode("utf-8")


def _read_lines(path: str) -> list[str]:
    # Split on "\n" only: str.splitlines would also break tokens at the
    # Unicode line separators some special tokens may hold.
    text = _read_text(path)
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n") if text else []


def _write_text(path: str, text: str) -> None:
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    with tf.io.gfile.GFile(temporary, "wb") as handle:
        handle.write(text.encode("utf-8"))
    tf.io.gfile.rename(temporary, path, overwrite=True)


def _same_path(first: str, second: str) -> bool:
    return os.path.normpath(first) == os.path.normpath(second)
