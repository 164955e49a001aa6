"""Record readers: a binary stream in, documents and rejects out.

Pure Python, no Beam: `read_records` streams a file line by line (gunzipping
`.gz` files) and yields a `Document` for each record it can read and a
`Reject` for each it cannot. Record numbers are the 1-based line number where
the record starts in the decompressed file; 0 stands for the whole file.

With a `target_field` (pairs such as document and summary), each JSON Lines
record or CSV row must also hold that field or column as a string, read into
`Document.target`; plain text has no fields, so a plain-text file read with a
target field is one `missing_field` reject for the whole file.
"""

import codecs
import csv
import gzip
import json
import posixpath
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO, NamedTuple

EMPTY_FILE = "empty_file"
UNDECODABLE_UTF8 = "undecodable_utf8"
MALFORMED_JSON = "malformed_json"
MISSING_FIELD = "missing_field"
MALFORMED_CSV = "malformed_csv"
CORRUPT_GZIP = "corrupt_gzip"
# Reasons a record cannot be read, in report order.
READ_REASONS = (
    EMPTY_FILE,
    UNDECODABLE_UTF8,
    MALFORMED_JSON,
    MISSING_FIELD,
    MALFORMED_CSV,
    CORRUPT_GZIP,
)
# How to repair the input, per reason.
FIXES = {
    EMPTY_FILE: "remove the file or narrow input_patterns so that it is not "
    "matched",
    UNDECODABLE_UTF8: "re-encode the file as UTF-8 (for example with "
    "`iconv -f LATIN1 -t UTF-8`)",
    MALFORMED_JSON: "write one JSON object per line, or set input_format if "
    "the file is not JSON Lines",
    MISSING_FIELD: "set text_field (and target_field, if set) to the field "
    "(jsonl) or column (csv) that holds the text (and the target), and give "
    "every record those fields as strings; plain text files have no fields, "
    "so read pairs from jsonl or csv files or leave target_field empty",
    MALFORMED_CSV: "give every row as many fields as the header, and quote "
    "fields that hold commas, quotes or line breaks",
    CORRUPT_GZIP: "re-create the .gz file (`gzip -t FILE` checks one)",
}

TEXT = "text"
JSONL = "jsonl"
CSV = "csv"
AUTO = "auto"
INPUT_FORMATS = (AUTO, TEXT, JSONL, CSV)
FILE = "file"
PARAGRAPH = "paragraph"
TEXT_UNITS = (FILE, PARAGRAPH)

# Extensions `auto` recognises (after a trailing `.gz` is stripped); any other
# extension is read as plain text. `.json` is JSON Lines, as most dataset
# exporters write it.
_FORMAT_BY_EXTENSION = {
    ".jsonl": JSONL,
    ".ndjson": JSONL,
    ".json": JSONL,
    ".csv": CSV,
}
# Errors Python's gzip raises on a truncated or corrupt stream.
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
# Characters of a record quoted in reject details.
_PREVIEW_CHARS = 60
# Documents in CSV cells may be far longer than the csv module's default
# field limit of 128 KiB.
_CSV_FIELD_LIMIT = 2**31 - 1


class Document(NamedTuple):
    """A record read from a file.

    Args:
        text: the document text, not yet normalised.
        source: the file path.
        record: the 1-based line number where the record starts.
        target: the target text (such as a summary), not yet normalised,
            when a target field is read; None otherwise.
    """

    text: str
    source: str
    record: int
    target: str | None = None


class Reject(NamedTuple):
    """A record, or a whole file, that was skipped.

    Args:
        reason: why, one of the reason constants.
        source: the file path.
        record: the 1-based line number where the record starts; 0 for the
            whole file.
        detail: a short human-readable explanation.
    """

    reason: str
    source: str
    record: int
    detail: str


def resolve_format(path: str, input_format: str) -> str:
    """Picks the record format of a file.

    Args:
        path: the file path; only its extension is used.
        input_format: one of `INPUT_FORMATS`; `auto` picks by the extension
            after stripping `.gz` (`.jsonl`/`.ndjson`/`.json` -> jsonl,
            `.csv` -> csv, anything else -> text).

    Returns:
        One of `text`, `jsonl`, `csv`.
    """
    if input_format != AUTO:
        return input_format
    name = path.lower().removesuffix(".gz")
    return _FORMAT_BY_EXTENSION.get(posixpath.splitext(name)[1], TEXT)


def read_records(
    stream: BinaryIO,
    source: str,
    input_format: str = AUTO,
    text_field: str = "text",
    text_unit: str = FILE,
    target_field: str = "",
) -> Iterator[Document | Reject]:
    """Reads the records of one file.

    Args:
        stream: the file's bytes, opened without decompression; a `source`
            ending in `.gz` is gunzipped here, line by line.
        source: the file path, for `Document.source` and the format.
        input_format: one of `INPUT_FORMATS`.
        text_field: the JSON field or CSV column that holds the text.
        text_unit: for plain text, `file` (one document per file) or
            `paragraph` (documents separated by blank lines).
        target_field: the JSON field or CSV column that holds the target
            (such as a summary); empty reads no target. When set, a record
            without it as a string is a `missing_field` reject, and a file
            in plain text (which has no fields) is one `missing_field`
            reject for the whole file, unread.

    Returns:
        An iterator of documents and rejects, in file order. A file with
        no record yields one `empty_file` reject; a corrupt `.gz` yields the
        records before the corruption, then one `corrupt_gzip` reject.
    """
    record_format = resolve_format(source, input_format)
    if target_field and record_format == TEXT:
        yield Reject(
            MISSING_FIELD,
            source,
            0,
            f"plain text has no fields, so no target_field {target_field!r}; "
            "the file is read as plain text (by its extension, or by "
            "input_format)",
        )
        return
    if source.lower().endswith(".gz"):
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    lines = _Lines(stream)
    if record_format == JSONL:
        records = _read_jsonl(lines, source, text_field, target_field)
    elif record_format == CSV:
        records = _read_csv(lines, source, text_field, target_field)
    elif text_unit == PARAGRAPH:
        records = _read_paragraphs(lines, source)
    else:
        records = _read_whole_file(lines, source)
    empty = True
    try:
        for record in records:
            empty = False
            yield record
    except _GZIP_ERRORS as e:
        yield Reject(
            CORRUPT_GZIP,
            source,
            lines.count + 1,
            f"{type(e).__name__}: {e}; lines from {lines.count + 1} on are "
            "lost",
        )
        return
    if empty:
        yield Reject(EMPTY_FILE, source, 0, "the file holds no record")


class _Lines:
    """Iterates the lines of a binary stream, counting them, BOM stripped."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            if self.count == 0:
                line = line.removeprefix(codecs.BOM_UTF8)
            self.count += 1
            yield line


def _preview(text: str) -> str:
    return repr(text[:_PREVIEW_CHARS])


def _decode(data: bytes, source: str, record: int) -> Document | Reject:
    try:
        return Document(data.decode("utf-8"), source, record)
    except UnicodeDecodeError as e:
        return Reject(
            UNDECODABLE_UTF8,
            source,
            record,
            f"byte {data[e.start : e.start + 1]!r} at offset {e.start} of the "
            f"record: {e.reason}",
        )


def _read_whole_file(
    lines: Iterable[bytes], source: str
) -> Iterator[Document | Reject]:
    data = b"".join(lines)
    if data.strip():
        yield _decode(data, source, 1)


def _read_paragraphs(
    lines: Iterable[bytes], source: str
) -> Iterator[Document | Reject]:
    block = []
    start = 0
    for number, line in enumerate(lines, start=1):
        if line.strip():
            if not block:
                start = number
            block.append(line)
        elif block:
            yield _decode(b"".join(block), source, start)
            block = []
    if block:
        yield _decode(b"".join(block), source, start)


def _field_name(field: str, target_field: str) -> str:
    """Names a field in a reject detail, marking the target field."""
    return f"{field!r} (target_field)" if field == target_field else repr(field)


def _string_fields_problem(
    value: dict[str, Any], fields: Sequence[str], target_field: str
) -> str | None:
    """Says which of the fields a JSON object lacks as a string, if any."""
    for field in fields:
        if field not in value:
            return (
                f"no field {_field_name(field, target_field)}; "
                f"fields: {sorted(value)[:10]}"
            )
        if not isinstance(value[field], str):
            return (
                f"field {_field_name(field, target_field)} is a "
                f"{type(value[field]).__name__}, not a string"
            )
    return None


def _read_jsonl(
    lines: Iterable[bytes], source: str, text_field: str, target_field: str
) -> Iterator[Document | Reject]:
    fields = (text_field, target_field) if target_field else (text_field,)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        decoded = _decode(line, source, number)
        if isinstance(decoded, Reject):
            yield decoded
            continue
        try:
            value = json.loads(decoded.text)
        except json.JSONDecodeError as e:
            yield Reject(
                MALFORMED_JSON,
                source,
                number,
                f"{e.msg} at column {e.colno}: "
                f"{_preview(decoded.text.rstrip())}",
            )
            continue
        if not isinstance(value, dict):
            yield Reject(
                MALFORMED_JSON,
                source,
                number,
                f"expected a JSON object, got {type(value).__name__}",
            )
            continue
        problem = _string_fields_problem(value, fields, target_field)
        if problem:
            yield Reject(MISSING_FIELD, source, number, problem)
        else:
            yield Document(
                value[text_field],
                source,
                number,
                value[target_field] if target_field else None,
            )


def _undecodable_row(row: list[str], source: str, record: int) -> Reject | None:
    """Finds bytes that were not UTF-8 (decoded as lone surrogates)."""
    try:
        "".join(row).encode("utf-8")
    except UnicodeEncodeError as e:
        return Reject(
            UNDECODABLE_UTF8, source, record, f"{e.reason} in the row"
        )
    return None


def _read_csv(
    lines: Iterable[bytes], source: str, text_field: str, target_field: str
) -> Iterator[Document | Reject]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    # Undecodable bytes become lone surrogates so that the csv parser keeps
    # its place; rows holding them are rejected below.
    reader = csv.reader(
        (line.decode("utf-8", "surrogateescape") for line in lines),
        strict=True,
    )
    try:
        # The header is the first row with a non-blank field.
        header = next(
            (row for row in reader if any(field.strip() for field in row)),
            None,
        )
    except csv.Error as e:
        yield Reject(MALFORMED_CSV, source, reader.line_num, f"header: {e}")
        return
    if header is None:
        return
    bad_header = _undecodable_row(header, source, reader.line_num)
    if bad_header:
        yield bad_header
        return
    fields = (text_field, target_field) if target_field else (text_field,)
    missing = [field for field in fields if field not in header]
    if missing:
        names = " or ".join(_field_name(f, target_field) for f in missing)
        yield Reject(
            MISSING_FIELD,
            source,
            reader.line_num,
            f"no column {names}; columns: {header[:10]}",
        )
        return
    column = header.index(text_field)
    target_column = header.index(target_field) if target_field else None
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield Reject(MALFORMED_CSV, source, start, str(e))
            start = reader.line_num + 1
            continue
        record, start = start, reader.line_num + 1
        if not row:
            continue
        if len(row) != len(header):
            yield Reject(
                MALFORMED_CSV,
                source,
                record,
                f"{len(row)} fields, the header has {len(header)}",
            )
            continue
        yield _undecodable_row(row, source, record) or Document(
            row[column],
            source,
            record,
            None if target_column is None else row[target_column],
        )
