"""SentencePairGen: documents in, next-sentence-prediction pairs out."""

from tfx import v1 as tfx
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import channel

from textmill.components.sentence_pairs import pairing
from textmill.components.sentence_pairs.executor import Executor
from textmill.components.sentence_pairs.spec import SentencePairGenSpec


def _invalid(argument: str, value: object, fix: str) -> ValueError:
    return ValueError(
        f"SentencePairGen: invalid {argument}={value!r}. Fix: {fix}."
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class SentencePairGen(base_beam_component.BaseBeamComponent):
    """Makes BERT next-sentence-prediction pairs from documents, on Beam.

    Each document is split into sentences by a rule-based splitter
    (abbreviations, decimals, quotes, ellipses and paragraph breaks handled;
    see `sentence_splitter`). Chunks of consecutive sentences grow to
    `target_length` (or, with probability `short_seq_prob`, to a random
    shorter length) and are cut at a random sentence boundary into segments
    A and B. Half the time B is replaced by sentences of another document of
    the same split (`is_next=0`); otherwise B is the true continuation
    (`is_next=1`).

    The output is the same for a given `seed` whatever the number of
    workers: every random choice comes from a hash of the seed and the
    document's `doc_id`, and the "other document" is the one at a hashed
    offset in the sorted list of document keys (see `pairing.choose_donor`).

    Sentences longer than `max_sentence_chars` are dropped (and never
    skipped over by a true pair); documents with a single sentence are
    dropped. Every drop is counted by reason in the report.

    Outputs:
        sentence_pairs: `Examples` with the input's split names, gzipped
            TFRecords in `Split-<name>/`; each tf.Example has bytes
            features `sentence_a` and `sentence_b` and the int64 label
            `is_next` (1: B follows A). Beside them, `pairs_report.json`
            holds per split the documents read and paired, the pairs, their
            class balance and the drops by reason. The pair counts are also
            custom properties `pairs_<split>` and `is_next_<split>`.

    Args:
        examples: `Examples` with a bytes feature `text` and, optionally,
            `doc_id` (else the SHA-256 of the text identifies a document);
            for instance TextExampleGen's output.
        target_length: the length A + B aims at, in `length_unit`; for a
            model input of `n` tokens, `n - 3` leaves room for `[CLS]` and
            two `[SEP]`.
        length_unit: `tokens` (words and punctuation marks, which WordPiece
            may split further) or `chars`.
        short_seq_prob: probability in [0, 1] of a random shorter target.
        max_sentence_chars: sentences longer than this are dropped.
        seed: the seed of every random choice.

    Example:

    ```python
    pairs = SentencePairGen(
        examples=example_gen.outputs["examples"], target_length=125
    )
    transform = Transform(examples=pairs.outputs["sentence_pairs"], ...)
    ```
    """

    SPEC_CLASS = SentencePairGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        examples: channel.BaseChannel,
        target_length: int = 125,
        length_unit: str = pairing.TOKENS,
        short_seq_prob: float = 0.1,
        max_sentence_chars: int = 2000,
        seed: int = 0,
    ):
        if not _is_int(target_length) or target_length < 2:
            raise _invalid(
                "target_length",
                target_length,
                "pass an int >= 2, such as sequence_length - 3",
            )
        if length_unit not in pairing.LENGTH_UNITS:
            raise _invalid(
                "length_unit",
                length_unit,
                f"pass one of {', '.join(pairing.LENGTH_UNITS)}",
            )
        if (
            isinstance(short_seq_prob, bool)
            or not isinstance(short_seq_prob, int | float)
            or not 0.0 <= short_seq_prob <= 1.0
        ):
            raise _invalid(
                "short_seq_prob",
                short_seq_prob,
                "pass a probability in [0, 1], such as 0.1",
            )
        if not _is_int(max_sentence_chars) or max_sentence_chars < 1:
            raise _invalid(
                "max_sentence_chars",
                max_sentence_chars,
                "pass an int >= 1, such as 2000",
            )
        if not _is_int(seed) or seed < 0:
            raise _invalid("seed", seed, "pass an int >= 0")
        super().__init__(
            spec=SentencePairGenSpec(
                examples=examples,
                sentence_pairs=tfx.dsl.Channel(
                    type=tfx.types.standard_artifacts.Examples
                ),
                target_length=target_length,
                length_unit=length_unit,
                short_seq_prob=float(short_seq_prob),
                max_sentence_chars=max_sentence_chars,
                seed=seed,
            )
        )
