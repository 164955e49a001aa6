"""TextExampleGen: raw text files in, train/eval tf.Examples out."""

import json
from collections.abc import Sequence

from tfx import v1 as tfx
from tfx.dsl.components.base import base_beam_component, executor_spec

from textmill.components.text_example_gen import readers
from textmill.components.text_example_gen.driver import TextExampleGenDriver
from textmill.components.text_example_gen.executor import Executor
from textmill.components.text_example_gen.spec import TextExampleGenSpec


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

    Records that cannot be read are skipped and counted by reason
    (`empty_file`, `undecodable_utf8`, `malformed_json`, `missing_field`,
    `malformed_csv`, `corrupt_gzip`), as are documents that are filtered out
    (`empty_after_normalization`, `too_short`, `too_long`, `duplicate`).
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
        text_unit: for plain text, `file` (one document per file) or
            `paragraph` (documents separated by blank lines).
        min_chars: the fewest characters a kept document has, after
            normalisation; 0 sets no minimum (empty documents are always
            dropped).
        max_chars: the most characters a kept document has.
        eval_fraction: the expected fraction of documents in eval, in (0, 1).
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
    ```
    """

    SPEC_CLASS = TextExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
    DRIVER_CLASS = TextExampleGenDriver

    def __init__(
        self,
        input_patterns: Sequence[str] | str,
        input_format: str = readers.AUTO,
        text_field: str = "text",
        text_unit: str = readers.FILE,
        min_chars: int = 1,
        max_chars: int = 1_000_000,
        eval_fraction: float = 0.1,
        strict: bool = False,
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
        spec = TextExampleGenSpec(
            input_patterns=json.dumps(list(input_patterns)),
            input_format=input_format,
            text_field=text_field,
            text_unit=text_unit,
            min_chars=min_chars,
            max_chars=max_chars,
            eval_fraction=float(eval_fraction),
            strict=strict,
            examples=tfx.dsl.Channel(
                type=tfx.types.standard_artifacts.Examples
            ),
        )
        super().__init__(spec=spec)
