"""BERT-style segment pairs from one document's sentences (pure Python).

The Beam executor calls these per document; they hold no state, and every
random choice comes from a `random.Random` seeded by a hash of the seed and
the document id, so the pairs of a document never depend on which worker
made them or in what order.

Segments follow BERT's pretraining data recipe (Devlin et al., 2019): a
chunk of consecutive sentences is grown until it reaches a target length
(`target_length`, or with probability `short_seq_prob` a random length in
`[2, target_length]`, so the model also sees short inputs); a random cut
splits it into segment A and segment B. With probability 1/2, B is replaced
by consecutive sentences of another document of the same split, as long as
the rest of the target length, and the sentences after A go back to the
document for its next chunk.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import re
from collections import Counter
from typing import NamedTuple

CHARS = "chars"
TOKENS = "tokens"
LENGTH_UNITS = (CHARS, TOKENS)

# Drop reasons and what each counts.
EMPTY_DOCUMENT = "empty_document"
SINGLE_SENTENCE_DOCUMENT = "single_sentence_document"
SENTENCE_TOO_LONG = "sentence_too_long"
ISOLATED_SENTENCE = "isolated_sentence"
NO_SENTENCE_PAIR = "no_sentence_pair"
NO_OTHER_DOCUMENT = "no_other_document"
DROP_UNITS = {
    EMPTY_DOCUMENT: "documents",
    SINGLE_SENTENCE_DOCUMENT: "documents",
    SENTENCE_TOO_LONG: "sentences",
    ISOLATED_SENTENCE: "sentences",
    NO_SENTENCE_PAIR: "documents",
    NO_OTHER_DOCUMENT: "pairs",
}
DROP_REASONS = tuple(DROP_UNITS)

# BERT's pre-tokens: runs of word characters, and each other visible
# character. WordPiece splits words further, so this is a lower bound.
_APPROXIMATE_TOKEN = re.compile(r"\w+|[^\w\s]")

# A sentence and its length in the configured unit.
Sentence = tuple[str, int]
# Consecutive sentences with no dropped sentence between them.
Run = list[Sentence]


class Pair(NamedTuple):
    """A finished example.

    Args:
        sentence_a: segment A.
        sentence_b: segment B.
        is_next: 1 if B follows A in the same document, else 0.
    """

    sentence_a: str
    sentence_b: str
    is_next: int


class NegativeRequest(NamedTuple):
    """Segment A of a random-next pair, waiting for B from another document.

    Args:
        sentence_a: segment A.
        target_b_length: length wanted for B, in the configured unit.
        donor_draw: random 64-bit value that picks the other document.
        start_draw: random 64-bit value that picks B's first sentence.
    """

    sentence_a: str
    target_b_length: int
    donor_draw: int
    start_draw: int


def sentence_length(sentence: str, unit: str) -> int:
    """The length of a sentence in characters or approximate tokens.

    Args:
        sentence: the sentence.
        unit: `chars`, or `tokens` (words and punctuation marks, a lower
            bound on the WordPiece count).

    Returns:
        The length, at least 1 for a non-empty sentence.
    """
    if unit == CHARS:
        return len(sentence)
    return len(_APPROXIMATE_TOKEN.findall(sentence))


def document_key(seed: int, doc_id: str) -> int:
    """A 64-bit key of a document that depends only on the seed and its id.

    Args:
        seed: the pairing seed.
        doc_id: the document's id.

    Returns:
        An int in `[0, 2**64)`.
    """
    digest = hashlib.sha256(f"key:{seed}:{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def pair_order_key(seed: int, pair: Pair) -> int:
    """A 64-bit key of a pair that depends only on the seed and its
    content: sorting by it puts the pairs in a random order, the same on
    every runner.

    Args:
        seed: the pairing seed.
        pair: the pair.

    Returns:
        An int in `[0, 2**64)`.
    """
    text = f"order:{seed}:{pair.is_next}:{pair.sentence_a}\0{pair.sentence_b}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def document_rng(seed: int, doc_id: str) -> random.Random:
    """The random generator of one document's pairs.

    Args:
        seed: the pairing seed.
        doc_id: the document's id.

    Returns:
        A `random.Random` seeded from a SHA-256 of both, the same in every
        process and on every platform.
    """
    digest = hashlib.sha256(f"rng:{seed}:{doc_id}".encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


def sentence_runs(
    sentences: list[str], unit: str, max_sentence_chars: int
) -> tuple[list[Run], Counter]:
    """Drops unusable sentences and cuts the document into runs.

    A sentence longer than `max_sentence_chars` is dropped, and the
    sentences before and after it no longer count as consecutive, so a
    "next" pair never skips it. A run of one sentence cannot make a pair and
    is dropped too.

    Args:
        sentences: the document's sentences, in order.
        unit: the length unit, one of `LENGTH_UNITS`.
        max_sentence_chars: the longest sentence kept, in characters.

    Returns:
        `(runs, dropped)`: runs of at least two sentences with their
        lengths, and the drop counts by reason.
    """
    dropped = Counter()
    if not sentences:
        dropped[EMPTY_DOCUMENT] += 1
        return [], dropped
    if len(sentences) == 1:
        dropped[SINGLE_SENTENCE_DOCUMENT] += 1
        return [], dropped
    runs = [[]]
    for sentence in sentences:
        if len(sentence) > max_sentence_chars:
            dropped[SENTENCE_TOO_LONG] += 1
            runs.append([])
        else:
            runs[-1].append((sentence, sentence_length(sentence, unit)))
    kept = []
    for run in runs:
        if len(run) >= 2:
            kept.append(run)
        elif run:
            dropped[ISOLATED_SENTENCE] += 1
    if not kept:
        dropped[NO_SENTENCE_PAIR] += 1
    return kept, dropped


def plan_pairs(
    runs: list[Run],
    rng: random.Random,
    target_length: int,
    short_seq_prob: float,
) -> list[Pair | NegativeRequest]:
    """Makes a document's positive pairs and its requests for negatives.

    Every sentence is used in some segment A or positive B. A chunk never
    leaves a single sentence behind at the end of a run (it could not form
    a pair), so no sentence is wasted and no label is forced.

    Args:
        runs: the document's runs (see `sentence_runs`).
        rng: the document's generator (see `document_rng`).
        target_length: the length A + B aims at.
        short_seq_prob: probability of a shorter, random target.

    Returns:
        `Pair`s with `is_next=1` and `NegativeRequest`s, in document order.
    """
    planned = []
    for run in runs:
        start = 0
        while start < len(run):
            target = target_length
            if rng.random() < short_seq_prob:
                target = rng.randint(min(2, target_length), target_length)
            end = _chunk_end(run, start, target)
            size = end - start
            cut = start + (rng.randint(1, size - 1) if size > 1 else 1)
            if rng.random() < 0.5:
                if len(run) - cut == 1:
                    cut = end  # keep the last sentence with this A
                segment_a = _join(run[start:cut])
                planned.append(
                    NegativeRequest(
                        segment_a,
                        max(1, target - _length(run[start:cut])),
                        rng.getrandbits(64),
                        rng.getrandbits(64),
                    )
                )
                start = cut  # the rest of the chunk goes back
            else:
                if size == 1:
                    # A alone reached the target: B is what follows.
                    end = cut + 1 if len(run) - cut > 2 else len(run)
                planned.append(
                    Pair(_join(run[start:cut]), _join(run[cut:end]), 1)
                )
                start = end
    return planned


def choose_donor(keys: list[int], own_key: int, donor_draw: int) -> int:
    """Picks the key of the document that gives a negative pair its B.

    The keys of all documents are sorted once; a document at rank r takes
    the one at `(r + 1 + draw % (n - 1)) % n`, uniform over the others and
    never itself, whatever the order in which requests are made.

    Args:
        keys: the sorted keys of the split's documents (at least 2).
        own_key: the requesting document's key.
        donor_draw: the request's random draw.

    Returns:
        A key from `keys` other than `own_key`.
    """
    rank = bisect.bisect_left(keys, own_key)
    return keys[(rank + 1 + donor_draw % (len(keys) - 1)) % len(keys)]


def donor_segment(runs: list[Run], start_draw: int, target_length: int) -> str:
    """Segment B of a negative pair, from the donor document.

    Args:
        runs: the donor's runs.
        start_draw: random value that picks the first sentence.
        target_length: length wanted.

    Returns:
        Consecutive sentences from a random one, until `target_length` is
        reached or the run ends.
    """
    starts = [(r, s) for r, run in enumerate(runs) for s in range(len(run))]
    run_index, start = starts[start_draw % len(starts)]
    run = runs[run_index]
    return _join(run[start : _chunk_end(run, start, target_length)])


def _chunk_end(run: Run, start: int, target: int) -> int:
    """End of the chunk from `start` that reaches `target`; never leaves a
    single sentence at the end of the run."""
    end, length = start, 0
    while end < len(run) and length < target:
        length += run[end][1]
        end += 1
    return len(run) if len(run) - end == 1 else end


def _join(sentences: list[Sentence]) -> str:
    return " ".join(sentence for sentence, _ in sentences)


def _length(sentences: list[Sentence]) -> int:
    return sum(length for _, length in sentences)
