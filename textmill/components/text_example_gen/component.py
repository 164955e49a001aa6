"""TextExampleGen: raw text files in, train/eval tf.Examples out."""

import json
from collections.abc import Sequence

from tfx import v1 as tfx
from tfx.dsl.components.base import base_beam_component, executor_spec

from textmill.components.text_example_gen import readers
from textmill.components.text_example_gen.driver import TextExampleGenDriver
from textmill.components.text_example_gen.executor import Executor
from textmill.components.text_example_gen.spec import TextExampleGenSpec
from textmill.config import IngestConfig

# The defaults of the arguments are those of the pipeline's config.
_DEFAULTS = IngestConfig()


def _invalid(argument: str, value: object, fix: str) -> ValueError:
    return ValueError(
        f"TextExampleGen: invalid {argument}={value!r}. Fix: {fix}."
    )


def _check_int(argument: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(argument, value, f"pass an int >= {minimum}")
    if value < minimum:
        raise _invalid(argument, value, f"pass an int >= {minimum}")


class TextExampleGen(base_beam_component.BaseBeamComponent):
    """Reads text files into train/eval tf.Examples, counting what it skips.

    Each record is normalised (Unicode NFC, whitespace), filtered by length,
    given a content id `doc_id` (16 hex chars of the SHA-256 of its text),
    de-duplicated (the copy with the smallest file path and record number is
    kept) and assigned to train or eval by a hash of its `doc_id`. Each
    example has the bytes features `text`, `doc_id` and `source` (the file).

    With `target_field` set, records are pairs such as (document, summary):
    each JSON Lines record or CSV row must also hold the target field as a
    string, the target is normalised like the text, and each example gets a
    fourth bytes feature, `target`. The length filters apply to the text
    only; `doc_id`, de-duplication and the split depend on the text only, so
    the same document with two summaries is kept once, with the summary of
    the record with the smallest file path and record number. Without
    `target_field` no `target` feature is written.

    Records that cannot be read are skipped and counted by reason
    (`empty_file`, `undecodable_utf8`, `malformed_json`, `missing_field`,
    `malformed_csv`, `corrupt_gzip`), as are documents that are filtered out
    (`empty_after_normalization`, `too_short`, `too_long`, `empty_target`,
    `duplicate`). `missing_field` covers the target field too, and a
    plain-text file under `auto` when a `target_field` is set (plain text
    has no fields): one reject for the whole file. `empty_target` is a
    target that holds only whitespace; give every record a non-empty one.
    With `strict=True` the first record that cannot be read fails the run
    with an `IngestError`; filtered documents never do.

    The component does no I/O. Its driver fingerprints the matched files
    (paths, sizes, mtimes) before the cache lookup, so a run is cached until
    an input file changes.

    Outputs:
        examples: `Examples` with splits `train` and `eval`, gzipped
            TFRecords in `Split-<name>/data_tfrecord-*.gz`, and the ingest
            report `ingest_report.json` (counts read, written per split and
            skipped per reason, with a few skipped records) beside them. The
            totals are also custom properties: `documents_read`,
            `documents_written_<split>`, `documents_skipped`.

    Args:
        input_patterns: file paths or glob patterns, local or `gs://`; a
            single string is one pattern. Every pattern must match a file.
        input_format: `auto` (by extension after stripping `.gz`: `.jsonl`,
            `.ndjson`, `.json` -> jsonl; `.csv` -> csv; else text), `text`,
            `jsonl` or `csv`. CSV files need a header row.
        text_field: the JSON field (jsonl) or CSV column that holds the text.
        target_field: the JSON field (jsonl) or CSV column that holds each
            record's target, such as its summary; empty (the default) reads
            no target. Needs jsonl or csv input: `input_format="text"` with
            a target is an error, and under `auto` each plain-text file is
            skipped as `missing_field`. Must differ from `text_field`.
        text_unit: for plain text, `file` (one document per file) or
            `paragraph` (documents separated by blank lines).
        min_chars: the fewest characters a kept document has, after
            normalisation; 0 sets no minimum (empty documents are always
            dropped).
        max_chars: the most characters a kept document has.
        eval_fraction: the expected fraction of documents in eval, in (0, 1).

    Every argument but `input_patterns` defaults to the field of the same
    name in `textmill.config.IngestConfig`, so the component alone and the
    pipeline read the same way.
        strict: fail on the first record that cannot be read instead of
            skipping and counting it.

    Example:

    ```python
    example_gen = TextExampleGen(
        input_patterns=["gs://bucket/corpus/*.jsonl.gz"],
        min_chars=200,
        eval_fraction=0.05,
    )
    examples = example_gen.outputs["examples"]

    # (document, summary) pairs from {"document": ..., "summary": ...}.
    pairs_gen = TextExampleGen(
        input_patterns=["gs://bucket/pairs/*.jsonl.gz"],
        text_field="document",
        target_field="summary",
    )
    ```
    """

    SPEC_CLASS = TextExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
    DRIVER_CLASS = TextExampleGenDriver

    def __init__(
        self,
        input_patterns: Sequence[str] | str,
        input_format: str = _DEFAULTS.input_format,
        text_field: str = _DEFAULTS.text_field,
        text_unit: str = _DEFAULTS.text_unit,
        min_chars: int = _DEFAULTS.min_chars,
        max_chars: int = _DEFAULTS.max_chars,
        eval_fraction: float = _DEFAULTS.eval_fraction,
        strict: bool = _DEFAULTS.strict,
        target_field: str = _DEFAULTS.target_field,
    ):
        if isinstance(input_patterns, str):
            input_patterns = [input_patterns]
        if (
            not isinstance(input_patterns, Sequence)
            or not input_patterns
            or not all(isinstance(p, str) and p for p in input_patterns)
        ):
            raise _invalid(
                "input_patterns",
                input_patterns,
                "pass a non-empty list of file paths or glob patterns, such "
                "as ['data/*.jsonl.gz']",
            )
        if input_format not in readers.INPUT_FORMATS:
            raise _invalid(
                "input_format",
                input_format,
                f"pass one of {', '.join(readers.INPUT_FORMATS)}",
            )
        if not isinstance(text_field, str) or not text_field:
            raise _invalid(
                "text_field",
                text_field,
                "pass the name of the JSON field or CSV column that holds "
                "the text, such as 'text'",
            )
        if text_unit not in readers.TEXT_UNITS:
            raise _invalid(
                "text_unit",
                text_unit,
                f"pass one of {', '.join(readers.TEXT_UNITS)}",
            )
        _check_int("min_chars", min_chars, 0)
        _check_int("max_chars", max_chars, 1)
        if max_chars < min_chars:
            raise _invalid(
                "max_chars",
                max_chars,
                f"pass max_chars >= min_chars ({min_chars})",
            )
        if (
            isinstance(eval_fraction, bool)
            or not isinstance(eval_fraction, int | float)
            or not 0.0 < eval_fraction < 1.0
        ):
            raise _invalid(
                "eval_fraction",
                eval_fraction,
                "pass a float strictly between 0 and 1, such as 0.1",
            )
        if not isinstance(strict, bool):
            raise _invalid("strict", strict, "pass True or False")
        if not isinstance(target_field, str):
            raise _invalid(
                "target_field",
                target_field,
                "pass the name of the JSON field or CSV column that holds "
                "the target, such as 'summary', or '' for none",
            )
        if target_field and target_field == text_field:
            raise _invalid(
                "target_field",
                target_field,
                "pass a field other than text_field for the target, or '' "
                "for none",
            )
        if target_field and input_format == readers.TEXT:
            raise _invalid(
                "target_field",
                target_field,
                "plain text has no fields to hold a target: give the pairs "
                "as JSON Lines or CSV with input_format 'jsonl', 'csv' or "
                "'auto', or pass target_field='' to read plain text",
            )
        spec = TextExampleGenSpec(
            input_patterns=json.dumps(list(input_patterns)),
            input_format=input_format,
            text_field=text_field,
            text_unit=text_unit,
            min_chars=min_chars,
            max_chars=max_chars,
            eval_fraction=float(eval_fraction),
            strict=strict,
            # Left out when empty, so that the execution properties (and the
            # cache keys) of pipelines without a target stay as they were.
            target_field=target_field or None,
            examples=tfx.dsl.Channel(
                type=tfx.types.standard_artifacts.Examples
            ),
        )
        super().__init__(spec=spec)
