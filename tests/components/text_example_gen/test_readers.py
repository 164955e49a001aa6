import gzip
import io
import json

import pytest

from textmill.components.text_example_gen import readers
from textmill.components.text_example_gen.readers import Document, Reject


def read(data: bytes, source: str, **kwargs) -> list[Document | Reject]:
    return list(readers.read_records(io.BytesIO(data), source, **kwargs))


def jsonl(*values) -> bytes:
    return "".join(json.dumps(v) + "\n" for v in values).encode("utf-8")


@pytest.mark.parametrize(
    "path, input_format, expected",
    [
        ("a.txt", "auto", "text"),
        ("a.md.gz", "auto", "text"),
        ("README", "auto", "text"),
        ("gs://b/a.JSONL.GZ", "auto", "jsonl"),
        ("a.ndjson", "auto", "jsonl"),
        ("a.json", "auto", "jsonl"),
        ("dir.csv/a.csv.gz", "auto", "csv"),
        ("a.csv", "text", "text"),
        ("a.txt", "jsonl", "jsonl"),
    ],
)
def test_resolve_format(path, input_format, expected):
    assert readers.resolve_format(path, input_format) == expected


def test_text_file_is_one_document_without_bom():
    records = read(b"\xef\xbb\xbfHello\n\nworld\n", "a.txt")
    assert records == [Document("Hello\n\nworld\n", "a.txt", 1)]


def test_text_paragraphs_start_at_their_line():
    records = read(
        b"one\ntwo\n\n \n\nthree\n\nfour", "a.txt", text_unit="paragraph"
    )
    assert records == [
        Document("one\ntwo\n", "a.txt", 1),
        Document("three\n", "a.txt", 6),
        Document("four", "a.txt", 8),
    ]


@pytest.mark.parametrize("data", [b"", b" \n\t\n"])
@pytest.mark.parametrize("source", ["a.txt", "a.jsonl", "a.csv"])
def test_file_without_records_is_empty_file(data, source):
    assert read(data, source) == [
        Reject("empty_file", source, 0, "the file holds no record")
    ]


def test_csv_header_only_is_empty_file():
    assert [r.reason for r in read(b"id,text\n", "a.csv")] == ["empty_file"]


def test_undecodable_text_file_is_rejected():
    (record,) = read(b"caf\xe9 au lait", "a.txt")
    assert record.reason == "undecodable_utf8"
    assert record.record == 1
    assert "offset 3" in record.detail


def test_undecodable_paragraph_does_not_affect_others():
    records = read(
        b"good\n\nbad \xff\n\nalso good\n", "a.txt", text_unit="paragraph"
    )
    assert [type(r).__name__ for r in records] == [
        "Document",
        "Reject",
        "Document",
    ]
    assert records[1][:3] == ("undecodable_utf8", "a.txt", 3)


def test_jsonl_records_and_rejects():
    data = (
        jsonl({"text": "first"})
        + b"\n"
        + b"{not json\n"
        + jsonl(["a", "list"], {"body": "x"}, {"text": 3})
        + b'{"text": "caf\xe9"}\n'
        + jsonl({"text": "last", "other": 1})
    )
    records = read(data, "a.jsonl")
    assert [(r.text, r.record) for r in records if isinstance(r, Document)] == [
        ("first", 1),
        ("last", 8),
    ]
    rejects = [r[:3] for r in records if isinstance(r, Reject)]
    assert rejects == [
        ("malformed_json", "a.jsonl", 3),
        ("malformed_json", "a.jsonl", 4),
        ("missing_field", "a.jsonl", 5),
        ("missing_field", "a.jsonl", 6),
        ("undecodable_utf8", "a.jsonl", 7),
    ]


def test_jsonl_custom_text_field():
    records = read(
        jsonl({"body": "x"}, {"text": "y"}), "a.jsonl", text_field="body"
    )
    assert records[0] == Document("x", "a.jsonl", 1)
    assert records[1].reason == "missing_field"


def test_csv_rows_and_rejects():
    data = (
        b"id,text\n"
        b'1,"multi\nline, with comma"\n'
        b"2,plain\n"
        b"3,too,many\n"
        b'4,"bad"quote\n'
        b"\n"
        b"5,caf\xe9\n"
        b'6,"say ""hi"""\n'
    )
    records = read(data, "a.csv")
    assert [r for r in records if isinstance(r, Document)] == [
        Document("multi\nline, with comma", "a.csv", 2),
        Document("plain", "a.csv", 4),
        Document('say "hi"', "a.csv", 9),
    ]
    assert [r[:3] for r in records if isinstance(r, Reject)] == [
        ("malformed_csv", "a.csv", 5),
        ("malformed_csv", "a.csv", 6),
        ("undecodable_utf8", "a.csv", 8),
    ]


def test_csv_without_the_column_is_rejected_once():
    records = read(b"id,body\n1,a\n2,b\n", "a.csv")
    assert len(records) == 1
    assert records[0][:3] == ("missing_field", "a.csv", 1)
    assert "'body'" in records[0].detail


def test_csv_unterminated_quote_is_malformed():
    records = read(b'id,text\n1,ok\n2,"never closed\n3,x\n', "a.csv")
    assert records[0] == Document("ok", "a.csv", 2)
    assert records[1][:3] == ("malformed_csv", "a.csv", 3)


def test_csv_field_longer_than_default_limit():
    text = "x" * 200_000
    records = read(f"text\n{text}\n".encode(), "a.csv")
    assert records == [Document(text, "a.csv", 2)]


def test_gzip_is_decompressed():
    data = gzip.compress(jsonl({"text": "a"}, {"text": "b"}))
    assert read(data, "a.jsonl.gz") == [
        Document("a", "a.jsonl.gz", 1),
        Document("b", "a.jsonl.gz", 2),
    ]


def test_truncated_gzip_keeps_records_before_the_corruption():
    data = gzip.compress(jsonl(*({"text": f"line {i}"} for i in range(3000))))
    records = read(data[: len(data) // 2], "a.jsonl.gz")
    *documents, last = records
    assert 0 < len(documents) < 3000
    assert [d.text for d in documents] == [
        f"line {i}" for i in range(len(documents))
    ]
    assert last[:3] == ("corrupt_gzip", "a.jsonl.gz", len(documents) + 1)


def test_not_gzip_data_is_corrupt_gzip():
    records = read(b"plain text", "a.txt.gz")
    assert [r[:3] for r in records] == [("corrupt_gzip", "a.txt.gz", 1)]
