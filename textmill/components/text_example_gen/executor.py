"""TextExampleGen's executor: a Beam pipeline from text files to tf.Examples.

Stages: MatchFiles -> ReadRecords -> Normalize -> Deduplicate ->
SplitTrainEval -> WriteSplit[train|eval], and WriteReport, which counts what
every stage read, wrote and skipped (`example_io` writes the splits and the
report and finishes the artifact).

With a `target_field`, each document carries a target (such as a summary)
through every stage: it is read from the same record, normalised like the
text (dropped as `empty_target` when nothing is left), and written as the
example's `target` feature. Content ids, de-duplication and the split depend
on the text alone.
"""

import functools
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from tfx import types
from tfx.types import artifact_utils

from textmill.components import example_io
from textmill.components.text_example_gen import files, normalize, readers
from textmill.components.text_example_gen import spec as spec_lib
from textmill.components.text_example_gen.ingest_error import IngestError
from textmill.components.text_example_gen.readers import Document, Reject
from textmill.features import (
    DOC_ID_FEATURE,
    SOURCE_FEATURE,
    TARGET_FEATURE,
    TEXT_FEATURE,
)

logger = logging.getLogger(__name__)

DUPLICATE = "duplicate"
# Every skip reason, in report order.
REASONS = readers.READ_REASONS + normalize.FILTER_REASONS + (DUPLICATE,)
# Name of the example feature that holds the target, when one is read.
TRAIN = "train"
EVAL = "eval"
SPLITS = (TRAIN, EVAL)
REPORT_SCHEMA_VERSION = 1
# The ingest report, at the root of the Examples artifact's directory, beside
# the Split-* directories (TFX readers only look inside those).
REPORT_FILENAME = "ingest_report.json"

# Beam metrics namespace of the counters.
METRICS_NAMESPACE = "textmill.TextExampleGen"
# Skipped records quoted in the report, per reason.
_EXAMPLES_PER_REASON = 3
_REJECTS = "rejects"
_DUPLICATES = "duplicates"
# Finds an IngestError's message in the text of an exception that Beam
# re-raised from a worker process.
_INGEST_ERROR_PATTERN = re.compile(
    r"IngestError: (.+?)(?: \[while running '[^']*'\])*$", re.MULTILINE
)


class _Tally(NamedTuple):
    """A count towards the report.

    Args:
        key: `files`, `read`, `written:<split>` or `skipped:<reason>`.
        count: how many.
        example: a skipped record to quote in the report, if any.
    """

    key: str
    count: int
    example: Reject | None


_counter = functools.partial(example_io.counter, METRICS_NAMESPACE)


def _skip(reject: Reject) -> _Tally:
    _counter(f"skipped_{reject.reason}").inc()
    return _Tally(f"skipped:{reject.reason}", 1, reject)


def _tally(key: str) -> _Tally:
    return _Tally(key, 1, None)


def _strict_message(reject: Reject) -> str:
    return (
        f"{reject.source}: record {reject.record}: {reject.reason} "
        f"({reject.detail}). Fix: {readers.FIXES[reject.reason]}, or set "
        "strict=False to skip and count such records."
    )


# 1. MatchFiles


def _matched_paths(patterns: Sequence[str]) -> list[str]:
    return [metadata.path for metadata in files.match_patterns(patterns)]


@beam.ptransform_fn
def MatchFiles(
    root: beam.pvalue.PBegin, patterns: Sequence[str]
) -> beam.PCollection[str]:
    """Matches the patterns and spreads the file paths over workers.

    Args:
        root: the pipeline.
        patterns: file paths or glob patterns.

    Returns:
        The matched file paths, each once.
    """
    return (
        root
        | "Patterns" >> beam.Create([list(patterns)])
        | "Match" >> beam.FlatMap(_matched_paths)
        | "Reshuffle" >> beam.Reshuffle()
    )


# 2. ReadRecords


class _ReadFileDoFn(beam.DoFn):
    """Reads one file; rejects go to the `rejects` output as tallies."""

    def __init__(
        self,
        input_format: str,
        text_field: str,
        text_unit: str,
        strict: bool,
        target_field: str = "",
    ):
        self._input_format = input_format
        self._text_field = text_field
        self._text_unit = text_unit
        self._strict = strict
        self._target_field = target_field

    def process(self, path: str) -> Iterator[Document]:
        _counter("files_read").inc()
        with FileSystems.open(
            path, compression_type=CompressionTypes.UNCOMPRESSED
        ) as stream:
            for record in readers.read_records(
                stream,
                path,
                self._input_format,
                self._text_field,
                self._text_unit,
                self._target_field,
            ):
                if isinstance(record, Document):
                    _counter("documents_read").inc()
                    yield record
                elif self._strict:
                    raise IngestError(_strict_message(record))
                else:
                    yield beam.pvalue.TaggedOutput(_REJECTS, _skip(record))


@beam.ptransform_fn
def ReadRecords(
    paths: beam.PCollection[str],
    input_format: str,
    text_field: str,
    text_unit: str,
    strict: bool,
    target_field: str = "",
) -> tuple[beam.PCollection[Document], beam.PCollection[_Tally]]:
    """Reads the records of every file.

    Args:
        paths: file paths.
        input_format: one of `readers.INPUT_FORMATS`.
        text_field: the JSON field or CSV column that holds the text.
        text_unit: `file` or `paragraph`, for plain text.
        strict: raise `IngestError` on the first record that cannot be read.
        target_field: the JSON field or CSV column that holds the target;
            empty reads none (`Document.target` is None).

    Returns:
        `(documents, tallies)`: a `PCollection[Document]` and a
        `PCollection[_Tally]` of the records that could not be read.
    """
    outputs = paths | "Read" >> beam.ParDo(
        _ReadFileDoFn(input_format, text_field, text_unit, strict, target_field)
    ).with_outputs(_REJECTS, main="documents")
    return outputs.documents, outputs[_REJECTS]


# 3. Normalize


class _NormalizeDoFn(beam.DoFn):
    """Normalises a document and its target, filters it, keys it by doc_id."""

    def __init__(self, min_chars: int, max_chars: int):
        self._min_chars = min_chars
        self._max_chars = max_chars

    def process(self, document: Document) -> Iterator[tuple[str, Document]]:
        text = normalize.normalize_text(document.text)
        target = (
            None
            if document.target is None
            else normalize.normalize_text(document.target)
        )
        skipped = normalize.filter_reason(
            text, self._min_chars, self._max_chars, target
        )
        if skipped:
            reason, detail = skipped
            reject = Reject(reason, document.source, document.record, detail)
            yield beam.pvalue.TaggedOutput(_REJECTS, _skip(reject))
        else:
            yield (
                normalize.doc_id(text),
                document._replace(text=text, target=target),
            )


@beam.ptransform_fn
def Normalize(
    documents: beam.PCollection[Document], min_chars: int, max_chars: int
) -> tuple[beam.PCollection[tuple[str, Document]], beam.PCollection[_Tally]]:
    """Normalises documents and drops those empty, too short or too long.

    A target is normalised too; a document whose target is left empty is
    dropped as `empty_target`. The length limits apply to the text only.

    Args:
        documents: documents as read.
        min_chars: the fewest characters a kept document has.
        max_chars: the most characters a kept document has.

    Returns:
        `(keyed, tallies)`: a `PCollection[tuple[str, Document]]` of
        normalised documents keyed by doc_id, and a `PCollection[_Tally]` of
        the dropped ones.
    """
    outputs = documents | "Normalize" >> beam.ParDo(
        _NormalizeDoFn(min_chars, max_chars)
    ).with_outputs(_REJECTS, main="keyed")
    return outputs.keyed, outputs[_REJECTS]


# 4. Deduplicate


def _origin(document: Document) -> tuple[str, int]:
    return document.source, document.record


class _FirstOriginFn(beam.CombineFn):
    """Keeps the two documents of smallest (source, record) and a count.

    The accumulator is `(documents, count)`: the first and second documents
    by origin, and how many documents there were.
    """

    def create_accumulator(self) -> tuple[list[Document], int]:
        return [], 0

    def add_input(
        self, accumulator: tuple[list[Document], int], document: Document
    ) -> tuple[list[Document], int]:
        return self.merge_accumulators([accumulator, ([document], 1)])

    def merge_accumulators(
        self, accumulators: Iterable[tuple[list[Document], int]]
    ) -> tuple[list[Document], int]:
        documents, count = [], 0
        for firsts, n in accumulators:
            documents.extend(firsts)
            count += n
        return sorted(documents, key=_origin)[:2], count

    def extract_output(
        self, accumulator: tuple[list[Document], int]
    ) -> tuple[list[Document], int]:
        return accumulator


def _keep_first(
    item: tuple[str, tuple[list[Document], int]],
) -> Iterator[tuple[str, Document]]:
    document_id, ((first, *rest), count) = item
    yield document_id, first
    if rest:
        _counter(f"skipped_{DUPLICATE}").inc(count - 1)
        example = Reject(
            DUPLICATE,
            rest[0].source,
            rest[0].record,
            f"same text as {first.source} record {first.record} "
            f"(doc_id {document_id})",
        )
        yield beam.pvalue.TaggedOutput(
            _DUPLICATES, _Tally(f"skipped:{DUPLICATE}", count - 1, example)
        )


@beam.ptransform_fn
def Deduplicate(
    keyed: beam.PCollection[tuple[str, Document]],
) -> tuple[beam.PCollection[tuple[str, Document]], beam.PCollection[_Tally]]:
    """Drops exact duplicates, keeping the smallest (source, record).

    Duplicates are documents with the same text (doc_id), whatever their
    targets: the same document with two summaries is kept once, with the
    target of its smallest (source, record), so that a text never lands in
    both splits or twice in one.

    Args:
        keyed: normalised documents keyed by doc_id.

    Returns:
        `(unique, tallies)`: a `PCollection[tuple[str, Document]]` with one
        document per doc_id, and a `PCollection[_Tally]` of duplicates.
    """
    outputs = (
        keyed
        | "FirstPerDocId" >> beam.CombinePerKey(_FirstOriginFn())
        | "KeepFirst"
        >> beam.FlatMap(_keep_first).with_outputs(_DUPLICATES, main="unique")
    )
    return outputs.unique, outputs[_DUPLICATES]


# 5. SplitTrainEval


def _split_index(
    item: tuple[str, Document], num_splits: int, eval_fraction: float
) -> int:
    del num_splits  # always len(SPLITS)
    split = EVAL if normalize.is_eval(item[0], eval_fraction) else TRAIN
    return SPLITS.index(split)


@beam.ptransform_fn
def SplitTrainEval(
    unique: beam.PCollection[tuple[str, Document]], eval_fraction: float
) -> tuple[beam.PCollection[tuple[str, Document]], ...]:
    """Assigns each document to train or eval by a hash of its doc_id.

    Args:
        unique: documents keyed by doc_id.
        eval_fraction: the expected fraction of documents in eval.

    Returns:
        One `PCollection[tuple[str, Document]]` per split, in `SPLITS` order.
    """
    return tuple(
        unique
        | "Partition"
        >> beam.Partition(_split_index, len(SPLITS), eval_fraction)
    )


# 6. WriteSplit (example_io.WriteSplit)


def _features(item: tuple[str, Document]) -> dict[str, str]:
    """A document's example: the bytes features `text`, `doc_id` and
    `source`, and `target` when the documents carry one (a `target_field`
    was read)."""
    document_id, document = item
    features = {
        TEXT_FEATURE: document.text,
        DOC_ID_FEATURE: document_id,
        SOURCE_FEATURE: document.source,
    }
    if document.target is not None:
        features[TARGET_FEATURE] = document.target
    return features


def _written(item: tuple[str, Document], split_name: str) -> _Tally:
    del item  # counted only
    _counter(f"documents_written_{split_name}").inc()
    return _tally(f"written:{split_name}")


# 7. WriteReport (example_io.WriteReport, summing with _ReportFn)


def _quote(examples: dict[str, list[Reject]], reject: Reject) -> None:
    """Keeps the first few rejects per reason, in (source, record) order."""
    quoted = examples.setdefault(reject.reason, [])
    quoted.append(reject)
    quoted.sort()
    del quoted[_EXAMPLES_PER_REASON:]


class _ReportFn(beam.CombineFn):
    """Sums tallies into the report dict.

    The accumulator is `(counts, examples)`: counts by tally key, and the
    skipped records to quote, by reason, smallest (source, record) first.
    """

    def __init__(self, header: dict[str, Any]):
        self._header = header

    def create_accumulator(
        self,
    ) -> tuple[dict[str, int], dict[str, list[Reject]]]:
        return {}, {}

    def add_input(
        self,
        accumulator: tuple[dict[str, int], dict[str, list[Reject]]],
        tally: _Tally,
    ) -> tuple[dict[str, int], dict[str, list[Reject]]]:
        counts, examples = accumulator
        counts[tally.key] = counts.get(tally.key, 0) + tally.count
        if tally.example:
            _quote(examples, tally.example)
        return accumulator

    def merge_accumulators(
        self,
        accumulators: Iterable[tuple[dict[str, int], dict[str, list[Reject]]]],
    ) -> tuple[dict[str, int], dict[str, list[Reject]]]:
        merged_counts, merged_examples = self.create_accumulator()
        for counts, examples in accumulators:
            for key, count in counts.items():
                merged_counts[key] = merged_counts.get(key, 0) + count
            for quoted in examples.values():
                for example in quoted:
                    _quote(merged_examples, example)
        return merged_counts, merged_examples

    def extract_output(
        self, accumulator: tuple[dict[str, int], dict[str, list[Reject]]]
    ) -> dict[str, Any]:
        counts, examples = accumulator
        skipped = {r: counts.get(f"skipped:{r}", 0) for r in REASONS}
        return {
            **self._header,
            "files_read": counts.get("files", 0),
            "documents_read": counts.get("read", 0),
            "written": {s: counts.get(f"written:{s}", 0) for s in SPLITS},
            "skipped": skipped,
            "skipped_total": sum(skipped.values()),
            "skipped_examples": [
                example._asdict()
                for reason in REASONS
                for example in examples.get(reason, [])
            ],
        }


class Executor(example_io.ExamplesExecutor):
    """Reads text files into train/eval tf.Examples and an ingest report.

    See `TextExampleGen` for the parameters and outputs. `Do` raises
    `IngestError` if a pattern matches no file, or in strict mode on the
    first record that cannot be read.
    """

    def plan(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> example_io.ExamplesPlan:
        """The stages from the files to the `train` and `eval` splits.

        Args:
            input_dict: unused; TextExampleGen has no inputs.
            output_dict: `examples`, one Examples artifact.
            exec_properties: the `TextExampleGenSpec` parameters.

        Returns:
            The plan.
        """
        del input_dict
        examples = artifact_utils.get_single_instance(
            output_dict[spec_lib.EXAMPLES_KEY]
        )
        patterns = json.loads(exec_properties[spec_lib.INPUT_PATTERNS_KEY])
        config = {
            "input_format": exec_properties[spec_lib.INPUT_FORMAT_KEY],
            "text_field": exec_properties[spec_lib.TEXT_FIELD_KEY],
            "text_unit": exec_properties[spec_lib.TEXT_UNIT_KEY],
            "min_chars": int(exec_properties[spec_lib.MIN_CHARS_KEY]),
            "max_chars": int(exec_properties[spec_lib.MAX_CHARS_KEY]),
            "eval_fraction": float(exec_properties[spec_lib.EVAL_FRACTION_KEY]),
            "strict": bool(exec_properties[spec_lib.STRICT_KEY]),
            "target_field": exec_properties.get(spec_lib.TARGET_FIELD_KEY)
            or "",
        }
        fingerprint = exec_properties.get(spec_lib.INPUT_FINGERPRINT_KEY)
        header = {
            "schema_version": REPORT_SCHEMA_VERSION,
            "input_patterns": patterns,
            "input_fingerprint": fingerprint,
            "config": config,
        }
        return example_io.ExamplesPlan(
            examples=examples,
            splits=SPLITS,
            stages=functools.partial(self._stages, patterns, config, examples),
            summarize=beam.CombineGlobally(_ReportFn(header)),
            report_filename=REPORT_FILENAME,
            # Span 0, as file-based ExampleGens record without a {SPAN}
            # pattern, so that span-aware resolvers accept the examples.
            span=0,
        )

    def explain_failure(self, error: Exception) -> None:
        """Raises the IngestError a worker process raised, as one."""
        if isinstance(error, IngestError):
            return
        # A worker process's exception reaches here as text only.
        found = _INGEST_ERROR_PATTERN.search(str(error))
        if found is not None:
            raise IngestError(found.group(1)) from error

    @staticmethod
    def _stages(
        patterns: list[str],
        config: dict[str, Any],
        examples: types.Artifact,
        pipeline: beam.Pipeline,
    ) -> list[beam.PCollection[_Tally]]:
        """Adds the stages to the pipeline; returns their tallies."""
        paths = pipeline | "MatchFiles" >> MatchFiles(patterns)
        documents, read_skips = paths | "ReadRecords" >> ReadRecords(
            config["input_format"],
            config["text_field"],
            config["text_unit"],
            config["strict"],
            config["target_field"],
        )
        keyed, filter_skips = documents | "Normalize" >> Normalize(
            config["min_chars"], config["max_chars"]
        )
        unique, duplicates = keyed | "Deduplicate" >> Deduplicate()
        splits = unique | "SplitTrainEval" >> SplitTrainEval(
            config["eval_fraction"]
        )
        written = [
            split
            | f"WriteSplit[{name}]"
            >> example_io.WriteSplit(
                name,
                artifact_utils.get_split_uri([examples], name),
                _features,
                _written,
            )
            for name, split in zip(SPLITS, splits, strict=True)
        ]
        return [
            paths | "TallyFiles" >> beam.Map(lambda _: _tally("files")),
            documents | "TallyRead" >> beam.Map(lambda _: _tally("read")),
            read_skips,
            filter_skips,
            duplicates,
            *written,
        ]

    def record_report(
        self, report: dict[str, Any], examples: types.Artifact
    ) -> None:
        """Logs the report's summary and copies its totals (and the input
        fingerprint) to properties."""
        if report["input_fingerprint"]:
            examples.set_string_custom_property(
                spec_lib.INPUT_FINGERPRINT_KEY, report["input_fingerprint"]
            )
        written = report["written"]
        skipped = {r: n for r, n in report["skipped"].items() if n}
        logger.info(
            "TextExampleGen: read %d documents from %d files; wrote %s; "
            "skipped %d records %s",
            report["documents_read"],
            report["files_read"],
            written,
            report["skipped_total"],
            skipped,
        )
        for split, count in written.items():
            if not count:
                logger.warning(
                    "TextExampleGen wrote no document to the %s split; "
                    "check the skip counts in %s.",
                    split,
                    examples.uri,
                )
            examples.set_int_custom_property(
                f"documents_written_{split}", count
            )
        examples.set_int_custom_property(
            "documents_read", report["documents_read"]
        )
        examples.set_int_custom_property(
            "documents_skipped", report["skipped_total"]
        )
