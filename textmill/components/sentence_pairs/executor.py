"""SentencePairGen's executor: a Beam pipeline from documents to NSP pairs.

Stages, for each split of the input: ReadDocuments -> SortedKeys ->
PlanPairs -> FillNegatives -> ShufflePairs -> WritePairs; then WriteReport
over all splits
(`example_io` writes the splits and the report and finishes the artifact).

Choosing "another document" for a random-next pair without global random
state takes two passes: SortedKeys gathers the 64-bit key of every document
(a hash of the seed and its `doc_id`) into one sorted list, a side input of
PlanPairs; a document asks for the key at a hashed offset from its own rank
(`pairing.choose_donor`), and FillNegatives joins each request with that
document by key. Only the keys travel to every worker (8 bytes a document),
never the texts.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import tensorflow as tf
from tfx import types
from tfx.types import artifact_utils
from tfx.utils import io_utils

from textmill.components import example_io
from textmill.components.sentence_pairs import pairing
from textmill.components.sentence_pairs import spec as spec_lib
from textmill.components.sentence_pairs.sentence_splitter import split_sentences
from textmill.components.text_example_gen.normalize import doc_id as content_id
from textmill.features import (
    DOC_ID_FEATURE,
    IS_NEXT_FEATURE,
    SENTENCE_A_FEATURE,
    SENTENCE_B_FEATURE,
    TEXT_FEATURE,
)

logger = logging.getLogger(__name__)

REPORT_FILENAME = "pairs_report.json"
REPORT_SCHEMA_VERSION = 1
METRICS_NAMESPACE = "textmill.SentencePairGen"
# Feature names of the input and output tf.Examples.

# Tally names besides the drop reasons.
_READ = "documents_read"
_PAIRED = "documents_paired"
_IS_NEXT = "is_next"
_NOT_NEXT = "not_next"
_REQUESTS = "requests"
_TALLIES = "tallies"


class _Document(NamedTuple):
    """A document ready for pairing.

    Args:
        doc_id: its id.
        runs: its runs of consecutive sentences (see `pairing.sentence_runs`).
    """

    doc_id: str
    runs: list[pairing.Run]


# (split, name, count): one count towards the report.
_Tally = tuple[str, str, int]


_counter = functools.partial(example_io.counter, METRICS_NAMESPACE)


def _bytes_feature(example: tf.train.Example, name: str) -> bytes | None:
    values = example.features.feature[name].bytes_list.value
    return values[0] if values else None


# 1. ReadDocuments


class _ReadDocumentDoFn(beam.DoFn):
    """Parses a tf.Example, splits its text into sentences, keys it."""

    def __init__(self, split: str, config: dict[str, Any]):
        self._split = split
        self._config = config

    def process(
        self, record: bytes
    ) -> Iterator[tuple[int, _Document] | beam.pvalue.TaggedOutput]:
        example = tf.train.Example.FromString(record)
        text = (_bytes_feature(example, TEXT_FEATURE) or b"").decode("utf-8")
        doc_id = _bytes_feature(example, DOC_ID_FEATURE)
        doc_id = doc_id.decode("utf-8") if doc_id else content_id(text)
        runs, dropped = pairing.sentence_runs(
            split_sentences(text),
            self._config["length_unit"],
            self._config["max_sentence_chars"],
        )
        _counter("documents_read").inc()
        yield self._tally(_READ, 1)
        for reason, count in dropped.items():
            _counter(f"dropped_{reason}").inc(count)
            yield self._tally(reason, count)
        if runs:
            yield self._tally(_PAIRED, 1)
            seed = self._config["seed"]
            yield pairing.document_key(seed, doc_id), _Document(doc_id, runs)

    def _tally(self, name: str, count: int) -> beam.pvalue.TaggedOutput:
        return beam.pvalue.TaggedOutput(_TALLIES, (self._split, name, count))


@beam.ptransform_fn
def ReadDocuments(
    root: beam.pvalue.PBegin,
    file_pattern: str,
    split: str,
    config: dict[str, Any],
):
    """Reads a split's tf.Examples into keyed, sentence-split documents.

    Args:
        root: the pipeline.
        file_pattern: the split's (gzipped) TFRecord files.
        split: the split's name, for the tallies.
        config: `length_unit`, `max_sentence_chars` and `seed`.

    Returns:
        `(documents, tallies)`: `PCollection[tuple[int, _Document]]` of the
        documents that can make pairs, keyed by `pairing.document_key`, and
        `PCollection[_Tally]` of what was read and dropped.
    """
    outputs = (
        root
        | "Read" >> beam.io.ReadFromTFRecord(file_pattern)
        | "Split"
        >> beam.ParDo(_ReadDocumentDoFn(split, config)).with_outputs(
            _TALLIES, main="documents"
        )
    )
    return outputs.documents, outputs[_TALLIES]


# 2. SortedKeys


@beam.ptransform_fn
def SortedKeys(
    documents: beam.PCollection[tuple[int, _Document]],
) -> beam.PCollection[list[int]]:
    """Gathers the distinct keys of all documents into one sorted list.

    Args:
        documents: keyed documents.

    Returns:
        A single-element `PCollection` (use as a singleton side input).
    """
    return (
        documents
        | "Keys" >> beam.Keys()
        | "Gather" >> beam.combiners.ToList()
        | "Sort" >> beam.Map(lambda keys: sorted(set(keys)))
    )


# 3. PlanPairs


class _PlanPairsDoFn(beam.DoFn):
    """Plans a document's pairs: positives out, negatives keyed by donor."""

    def __init__(self, split: str, config: dict[str, Any]):
        self._split = split
        self._config = config

    def process(
        self, item: tuple[int, _Document], keys: list[int]
    ) -> Iterator[pairing.Pair | beam.pvalue.TaggedOutput]:
        key, document = item
        rng = pairing.document_rng(self._config["seed"], document.doc_id)
        for planned in pairing.plan_pairs(
            document.runs,
            rng,
            self._config["target_length"],
            self._config["short_seq_prob"],
        ):
            if isinstance(planned, pairing.Pair):
                yield planned
            elif len(keys) < 2:
                _counter(f"dropped_{pairing.NO_OTHER_DOCUMENT}").inc()
                yield beam.pvalue.TaggedOutput(
                    _TALLIES, (self._split, pairing.NO_OTHER_DOCUMENT, 1)
                )
            else:
                donor = pairing.choose_donor(keys, key, planned.donor_draw)
                yield beam.pvalue.TaggedOutput(_REQUESTS, (donor, planned))


@beam.ptransform_fn
def PlanPairs(
    documents: beam.PCollection[tuple[int, _Document]],
    keys: beam.PCollection[list[int]],
    split: str,
    config: dict[str, Any],
):
    """Makes the true pairs and the requests for random-next pairs.

    Args:
        documents: keyed documents.
        keys: the sorted document keys (one element).
        split: the split's name, for the tallies.
        config: `seed`, `target_length` and `short_seq_prob`.

    Returns:
        `(positives, requests, tallies)`: `PCollection[pairing.Pair]`,
        `PCollection[tuple[int, pairing.NegativeRequest]]` keyed by the
        donor document's key, and `PCollection[_Tally]` of the requests
        dropped for want of another document.
    """
    outputs = documents | "Plan" >> beam.ParDo(
        _PlanPairsDoFn(split, config), keys=beam.pvalue.AsSingleton(keys)
    ).with_outputs(_REQUESTS, _TALLIES, main="positives")
    return outputs.positives, outputs[_REQUESTS], outputs[_TALLIES]


# 4. FillNegatives


def _fill_negatives(
    item: tuple[int, dict[str, list]],
) -> Iterator[pairing.Pair]:
    _, grouped = item
    requests = grouped[_REQUESTS]
    if not requests:
        return
    # Documents with the same id share a key; take one deterministically.
    donor = min(grouped["donors"])
    for request in requests:
        segment_b = pairing.donor_segment(
            donor.runs, request.start_draw, request.target_b_length
        )
        yield pairing.Pair(request.sentence_a, segment_b, 0)


@beam.ptransform_fn
def FillNegatives(
    requests: beam.PCollection[tuple[int, pairing.NegativeRequest]],
    documents: beam.PCollection[tuple[int, _Document]],
) -> beam.PCollection[pairing.Pair]:
    """Joins each request with its donor document and takes B from it.

    Args:
        requests: requests keyed by the donor's key.
        documents: keyed documents.

    Returns:
        The random-next pairs (`is_next=0`).
    """
    return (
        {_REQUESTS: requests, "donors": documents}
        | "Join" >> beam.CoGroupByKey()
        | "TakeB" >> beam.FlatMap(_fill_negatives)
    )


# 5. ShufflePairs

# Pairs are written bucket by bucket, each bucket in a random order; a
# bucket holds about this many pairs, of both labels.
_PAIRS_PER_BUCKET = 256


def _in_random_order(
    item: tuple[int, list[tuple[int, pairing.Pair]]],
) -> Iterator[pairing.Pair]:
    _, keyed = item
    for _, pair in sorted(keyed):
        yield pair


@beam.ptransform_fn
def ShufflePairs(
    pairs: beam.PCollection[pairing.Pair], seed: int
) -> beam.PCollection[pairing.Pair]:
    """The pairs in a random order that mixes the labels.

    PlanPairs emits every true pair and FillNegatives every random-next
    one, and the runner writes them largely in that order: tens of
    thousands of one label, then of the other. The Trainer's shuffle
    buffer (10,000 examples) cannot undo such runs, so its batches would
    hold one label and the model would learn the order of the file, not
    the pairs. Each pair goes by its `pairing.pair_order_key` into one of
    `count / _PAIRS_PER_BUCKET` buckets and is sorted by that key there,
    so whatever order a runner gives the buckets, the labels are mixed at
    the scale of a bucket, and no bucket outgrows a worker's memory.

    Args:
        pairs: the split's pairs, in any order.
        seed: the pairing seed.

    Returns:
        The same pairs.
    """

    def keyed(
        pair: pairing.Pair, count: int
    ) -> tuple[int, tuple[int, pairing.Pair]]:
        key = pairing.pair_order_key(seed, pair)
        return key % max(1, count // _PAIRS_PER_BUCKET), (key, pair)

    count = pairs | "Count" >> beam.combiners.Count.Globally()
    return (
        pairs
        | "Key" >> beam.Map(keyed, count=beam.pvalue.AsSingleton(count))
        | "Bucket" >> beam.GroupByKey()
        | "Sort" >> beam.FlatMap(_in_random_order)
    )


# 6. WritePairs (example_io.WriteSplit)


def _features(pair: pairing.Pair) -> dict[str, str | int]:
    return {
        SENTENCE_A_FEATURE: pair.sentence_a,
        SENTENCE_B_FEATURE: pair.sentence_b,
        IS_NEXT_FEATURE: pair.is_next,
    }


def _label_tally(pair: pairing.Pair, split: str) -> _Tally:
    name = _IS_NEXT if pair.is_next else _NOT_NEXT
    _counter(f"pairs_{name}").inc()
    return split, name, 1


# 7. WriteReport (example_io.WriteReport, summing with SumReport)


def _report(
    counts: list[tuple[tuple[str, str], int]],
    splits: list[str],
    config: dict[str, Any],
) -> dict[str, Any]:
    totals = dict(counts)

    def count(split: str, name: str) -> int:
        return totals.get((split, name), 0)

    per_split = {}
    for split in splits:
        is_next, not_next = count(split, _IS_NEXT), count(split, _NOT_NEXT)
        pairs = is_next + not_next
        per_split[split] = {
            "documents_read": count(split, _READ),
            "documents_paired": count(split, _PAIRED),
            "pairs": pairs,
            "is_next": is_next,
            "not_next": not_next,
            "is_next_fraction": is_next / pairs if pairs else None,
            "dropped": {
                reason: count(split, reason) for reason in pairing.DROP_REASONS
            },
        }
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "config": config,
        "splits": per_split,
        "dropped_units": pairing.DROP_UNITS,
    }


@beam.ptransform_fn
def SumReport(
    tallies: beam.PCollection[_Tally],
    splits: Sequence[str],
    config: dict[str, Any],
) -> beam.PCollection[dict[str, Any]]:
    """Sums the tallies by split and name into the report dict.

    Args:
        tallies: every count of every split.
        splits: the split names, in report order.
        config: the parameters, copied into the report.

    Returns:
        The report, one element.
    """
    return (
        tallies
        | "Key" >> beam.Map(lambda tally: ((tally[0], tally[1]), tally[2]))
        | "Sum" >> beam.CombinePerKey(sum)
        | "Gather" >> beam.combiners.ToList()
        | "Report" >> beam.Map(_report, list(splits), config)
    )


class Executor(example_io.ExamplesExecutor):
    """Makes next-sentence-prediction pairs and the pairs report.

    See `SentencePairGen` for the parameters and outputs.
    """

    def plan(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> example_io.ExamplesPlan:
        """The stages from each input split to the same output split.

        Args:
            input_dict: `examples`, one Examples artifact.
            output_dict: `sentence_pairs`, one Examples artifact.
            exec_properties: the `SentencePairGenSpec` parameters.

        Returns:
            The plan.

        Raises:
            ValueError: if the input Examples have no split.
        """
        examples = artifact_utils.get_single_instance(
            input_dict[spec_lib.EXAMPLES_KEY]
        )
        pairs = artifact_utils.get_single_instance(
            output_dict[spec_lib.SENTENCE_PAIRS_KEY]
        )
        splits = artifact_utils.decode_split_names(examples.split_names)
        if not splits:
            raise ValueError(
                f"SentencePairGen: input Examples {examples.uri} have no "
                "split (split_names is empty). Fix: pass the output of an "
                "ExampleGen such as TextExampleGen."
            )
        config = {
            "target_length": int(exec_properties[spec_lib.TARGET_LENGTH_KEY]),
            "length_unit": exec_properties[spec_lib.LENGTH_UNIT_KEY],
            "short_seq_prob": float(
                exec_properties[spec_lib.SHORT_SEQ_PROB_KEY]
            ),
            "max_sentence_chars": int(
                exec_properties[spec_lib.MAX_SENTENCE_CHARS_KEY]
            ),
            "seed": int(exec_properties[spec_lib.SEED_KEY]),
        }
        return example_io.ExamplesPlan(
            examples=pairs,
            splits=splits,
            stages=functools.partial(
                self._stages, examples, pairs, splits, config
            ),
            summarize=SumReport(splits, config),
            report_filename=REPORT_FILENAME,
            span=examples.span,
        )

    @classmethod
    def _stages(
        cls,
        examples: types.Artifact,
        pairs: types.Artifact,
        splits: list[str],
        config: dict[str, Any],
        pipeline: beam.Pipeline,
    ) -> list[beam.PCollection[_Tally]]:
        """Adds every split's stages to the pipeline; returns the tallies."""
        tallies = []
        for split in splits:
            pattern = io_utils.all_files_pattern(
                artifact_utils.get_split_uri([examples], split)
            )
            output_uri = artifact_utils.get_split_uri([pairs], split)
            tallies.extend(
                cls._split_pipeline(
                    pipeline, pattern, output_uri, split, config
                )
            )
        return tallies

    @staticmethod
    def _split_pipeline(
        pipeline: beam.Pipeline,
        pattern: str,
        output_uri: str,
        split: str,
        config: dict[str, Any],
    ) -> list[beam.PCollection[_Tally]]:
        """Adds one split's stages; returns its tallies."""
        documents, read_tallies = (
            pipeline
            | f"ReadDocuments[{split}]" >> ReadDocuments(pattern, split, config)
        )
        keys = documents | f"SortedKeys[{split}]" >> SortedKeys()
        positives, requests, plan_tallies = (
            documents | f"PlanPairs[{split}]" >> PlanPairs(keys, split, config)
        )
        negatives = requests | f"FillNegatives[{split}]" >> FillNegatives(
            documents
        )
        written = (
            (positives, negatives)
            | f"FlattenPairs[{split}]" >> beam.Flatten()
            | f"ShufflePairs[{split}]" >> ShufflePairs(config["seed"])
            | f"WritePairs[{split}]"
            >> example_io.WriteSplit(split, output_uri, _features, _label_tally)
        )
        return [read_tallies, plan_tallies, written]

    def record_report(
        self, report: dict[str, Any], pairs: types.Artifact
    ) -> None:
        """Logs the report's summary and copies its totals to properties."""
        for split, summary in report["splits"].items():
            dropped = {r: n for r, n in summary["dropped"].items() if n}
            logger.info(
                "SentencePairGen[%s]: %d documents read, %d paired; %d pairs "
                "(is_next fraction %s); dropped %s",
                split,
                summary["documents_read"],
                summary["documents_paired"],
                summary["pairs"],
                summary["is_next_fraction"],
                dropped,
            )
            if not summary["pairs"]:
                logger.warning(
                    "SentencePairGen wrote no pair to the %s split; check "
                    "the drop counts in %s.",
                    split,
                    os.path.join(pairs.uri, REPORT_FILENAME),
                )
            pairs.set_int_custom_property(f"pairs_{split}", summary["pairs"])
            pairs.set_int_custom_property(
                f"is_next_{split}", summary["is_next"]
            )
