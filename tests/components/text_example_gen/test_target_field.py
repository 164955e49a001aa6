"""Paired records (`target_field`): readers, filters, component, executor."""

import glob
import gzip
import os

import pytest
import tensorflow as tf
from apache_beam.metrics.metric import MetricsFilter

from textmill import features
from textmill.components.example_io import serialize_example
from textmill.components.text_example_gen import (
    IngestError,
    TextExampleGen,
    executor,
    normalize,
    readers,
    spec,
)
from textmill.components.text_example_gen.readers import Document, Reject

# The helpers of the reader and executor tests, beside this file.
from .test_executor import jsonl, run_executor, write
from .test_readers import read

PAIR = {"text_field": "document", "target_field": "summary"}


# Readers


def test_jsonl_pairs_are_read_with_their_target():
    data = jsonl(
        {"document": "Doc one.", "summary": "Sum one.", "id": 1},
        {"document": "Doc two.", "summary": ""},
    )
    assert read(data, "a.jsonl", **PAIR) == [
        Document("Doc one.", "a.jsonl", 1, "Sum one."),
        Document("Doc two.", "a.jsonl", 2, ""),
    ]


def test_jsonl_missing_or_non_string_target_is_missing_field():
    data = jsonl(
        {"document": "No summary."},
        {"document": "Number.", "summary": 5},
        {"document": "Null.", "summary": None},
        {"summary": "No document."},
        {"document": "Kept.", "summary": "Yes."},
    )
    *rejects, kept = read(data, "a.jsonl", **PAIR)
    assert kept == Document("Kept.", "a.jsonl", 5, "Yes.")
    assert [r[:3] for r in rejects] == [
        ("missing_field", "a.jsonl", 1),
        ("missing_field", "a.jsonl", 2),
        ("missing_field", "a.jsonl", 3),
        ("missing_field", "a.jsonl", 4),
    ]
    assert "no field 'summary' (target_field)" in rejects[0].detail
    assert "field 'summary' (target_field) is a int" in rejects[1].detail
    assert "is a NoneType, not a string" in rejects[2].detail
    # A record without its text is reported for the text field.
    assert "no field 'document';" in rejects[3].detail


def test_csv_pairs_are_read_with_their_target():
    data = (
        b"id,summary,document\n"
        b'1,Sum one.,"Doc, one."\n'
        b"2,,Doc two.\n"
        b"3,too,many,fields\n"
    )
    records = read(data, "a.csv", **PAIR)
    assert records[:2] == [
        Document("Doc, one.", "a.csv", 2, "Sum one."),
        Document("Doc two.", "a.csv", 3, ""),
    ]
    assert records[2][:3] == ("malformed_csv", "a.csv", 4)


@pytest.mark.parametrize(
    "header, missing",
    [
        (b"id,document", "'summary' (target_field)"),
        (b"id,text", "'document' or 'summary' (target_field)"),
    ],
)
def test_csv_header_without_the_target_column_is_rejected_once(header, missing):
    records = read(header + b"\n1,a\n2,b\n", "a.csv", **PAIR)
    assert len(records) == 1
    assert records[0][:3] == ("missing_field", "a.csv", 1)
    assert f"no column {missing};" in records[0].detail


@pytest.mark.parametrize(
    "source, data, text_unit",
    [
        ("a.txt", b"Some text.\n\nMore text.\n", "file"),
        ("a.md", b"Some text.\n\nMore text.\n", "paragraph"),
        # mtime=0: the same bytes, so the same test id, in every process.
        ("a.txt.gz", gzip.compress(b"Gzipped text.", mtime=0), "file"),
        ("a.txt", b"", "file"),
    ],
    ids=["txt", "md", "txt.gz", "empty"],
)
def test_plain_text_file_is_one_missing_field_reject(source, data, text_unit):
    records = read(data, source, text_unit=text_unit, **PAIR)
    assert len(records) == 1
    assert records[0][:3] == ("missing_field", source, 0)
    assert "plain text has no fields" in records[0].detail
    assert "'summary'" in records[0].detail


def test_explicit_text_format_with_a_target_is_rejected_by_the_reader():
    records = read(b"Some text.", "a.jsonl", input_format="text", **PAIR)
    assert [r[:3] for r in records] == [("missing_field", "a.jsonl", 0)]


def test_gzipped_pairs_are_read():
    pairs = jsonl({"document": "Gz doc.", "summary": "Gz sum."})
    assert read(gzip.compress(pairs), "a.jsonl.gz", **PAIR) == [
        Document("Gz doc.", "a.jsonl.gz", 1, "Gz sum.")
    ]
    rows = gzip.compress(b"document,summary\nGz row.,Gz row sum.\n")
    assert read(rows, "a.csv.gz", **PAIR) == [
        Document("Gz row.", "a.csv.gz", 2, "Gz row sum.")
    ]


def test_without_target_field_documents_have_no_target():
    (from_jsonl,) = read(jsonl({"text": "a", "summary": "b"}), "a.jsonl")
    (from_csv,) = read(b"text,summary\na,b\n", "a.csv")
    assert from_jsonl.target is None and from_csv.target is None
    assert Document("a", "s", 1) == Document("a", "s", 1, None)


def test_missing_field_fix_covers_the_target_field():
    fix = readers.FIXES[readers.MISSING_FIELD]
    assert "text_field" in fix and "target_field" in fix
    assert "plain text" in fix


# Normalisation


def test_empty_target_is_filtered_after_the_text():
    assert normalize.EMPTY_TARGET == "empty_target"
    assert normalize.EMPTY_TARGET in normalize.FILTER_REASONS
    assert normalize.EMPTY_TARGET in executor.REASONS
    empty = normalize.normalize_text(" \t\n\u00a0\n")
    reason, detail = normalize.filter_reason("A document.", 1, 100, empty)
    assert reason == "empty_target"
    assert "no target left" in detail and "'A document.'" in detail
    # The text's reasons come first.
    assert normalize.filter_reason("", 1, 100, "")[0] == (
        "empty_after_normalization"
    )
    assert normalize.filter_reason("abc", 4, 100, "")[0] == "too_short"
    # No target, or any non-empty one: the length limits are the text's only.
    assert normalize.filter_reason("abcd", 4, 10, None) is None
    assert normalize.filter_reason("abcd", 4, 10, "x") is None
    assert normalize.filter_reason("abcd", 4, 10, "x" * 100) is None


# Component


def test_target_field_is_recorded_only_when_set():
    gen = TextExampleGen(input_patterns=["a.jsonl"], **PAIR)
    assert gen.exec_properties[spec.TARGET_FIELD_KEY] == "summary"
    assert gen.exec_properties[spec.TEXT_FIELD_KEY] == "document"
    plain = TextExampleGen(input_patterns=["a.jsonl"])
    assert plain.exec_properties.get(spec.TARGET_FIELD_KEY) is None


@pytest.mark.parametrize(
    "kwargs, fix",
    [
        ({"input_format": "text", "target_field": "summary"}, "plain text"),
        ({"target_field": "text"}, "other than text_field"),
        ({"target_field": 3}, "or '' for none"),
    ],
)
def test_invalid_target_field_names_value_and_fix(kwargs, fix):
    with pytest.raises(ValueError) as raised:
        TextExampleGen(input_patterns=["a.txt"], **kwargs)
    message = str(raised.value)
    assert f"target_field={kwargs['target_field']!r}" in message
    assert "Fix: " in message and fix in message


# Executor


def read_examples(examples):
    """Returns every example of both splits as {feature name: value}."""
    paths = glob.glob(os.path.join(examples.uri, "Split-*", "*.gz"))
    assert paths
    rows = []
    for record in tf.data.TFRecordDataset(paths, compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        rows.append(
            {
                name: value.bytes_list.value[0].decode()
                for name, value in feature.items()
            }
        )
    return rows


def pair_inputs(data):
    """Writes a jsonl + csv mix of pairs and of records to skip."""
    write(
        data / "a.jsonl",
        jsonl(
            {"document": "Doc one.", "summary": "Sum one."},
            {"document": "  Doc   two. ", "summary": " Sum\t two.\n"},
            {"document": "No summary."},  # missing_field
            {"document": "Number.", "summary": 5},  # missing_field
            {"document": "Blank summary.", "summary": " \n "},  # empty_target
            {"document": "Doc one.", "summary": "Other sum."},  # duplicate
        ),
    )
    write(
        data / "b.csv",
        b"id,document,summary\n"
        b"1,CSV doc.,A CSV summary longer than max_chars.\n"
        b"2,Tiny,Tiny sum.\n",  # too_short
    )
    write(
        data / "c.jsonl.gz",
        gzip.compress(jsonl({"document": "Gz doc.", "summary": "Gz sum."})),
    )
    # Files that cannot hold a target: one missing_field each.
    write(data / "d.csv", b"id,document\n1,No summary column.\n")
    write(data / "e.txt", b"Plain text has no summary.")


def test_pairs_are_written_with_a_target_feature(tmp_path):
    pair_inputs(tmp_path / "in")
    examples, report, pipeline = run_executor(
        tmp_path,
        [tmp_path / "in" / "*"],
        min_chars=5,
        max_chars=20,
        **{spec.TEXT_FIELD_KEY: "document", spec.TARGET_FIELD_KEY: "summary"},
    )

    rows = read_examples(examples)
    assert all(
        set(row) == {"text", "doc_id", "source", "target"} for row in rows
    )
    assert {row["text"]: row["target"] for row in rows} == {
        "Doc one.": "Sum one.",  # the first of the duplicates
        "Doc two.": "Sum two.",
        "CSV doc.": "A CSV summary longer than max_chars.",
        "Gz doc.": "Gz sum.",
    }
    for row in rows:
        assert row["doc_id"] == normalize.doc_id(row["text"])
    assert report["config"]["target_field"] == "summary"
    assert report["documents_read"] == 7
    assert sum(report["written"].values()) == 4
    assert {r: n for r, n in report["skipped"].items() if n} == {
        "missing_field": 4,
        "too_short": 1,
        "empty_target": 1,
        "duplicate": 1,
    }
    assert report["skipped_total"] == 7
    counters = pipeline.result.metrics().query(
        MetricsFilter().with_namespace(executor.METRICS_NAMESPACE)
    )["counters"]
    committed = {c.key.metric.name: c.committed for c in counters}
    assert committed["skipped_empty_target"] == 1
    quoted = report["skipped_examples"]
    (empty_target,) = [e for e in quoted if e["reason"] == "empty_target"]
    assert empty_target["source"].endswith("a.jsonl")
    assert empty_target["record"] == 5
    missing = {
        (os.path.basename(e["source"]), e["record"])
        for e in quoted
        if e["reason"] == "missing_field"
    }
    # Up to three quoted, smallest (source, record) first.
    assert missing == {("a.jsonl", 3), ("a.jsonl", 4), ("d.csv", 1)}

    # Without target_field: the same pipeline writes no target feature.
    plain, plain_report, _ = run_executor(
        tmp_path,
        [tmp_path / "in" / "*"],
        name="plain",
        **{spec.TEXT_FIELD_KEY: "document"},
    )
    plain_rows = read_examples(plain)
    assert plain_rows
    assert all(set(row) == {"text", "doc_id", "source"} for row in plain_rows)
    assert plain_report["config"]["target_field"] == ""
    assert plain_report["skipped"]["empty_target"] == 0


def test_strict_mode_fails_on_a_plain_text_file_with_a_target(tmp_path):
    write(tmp_path / "a.txt", b"Plain text.")
    with pytest.raises(IngestError) as raised:
        run_executor(
            tmp_path,
            [tmp_path / "a.txt"],
            strict=True,
            **{spec.TARGET_FIELD_KEY: "summary"},
        )
    message = str(raised.value)
    assert "a.txt: record 0: missing_field (plain text has no fields" in (
        message
    )
    assert "target_field" in message.split("Fix: ")[1]


def test_example_without_target_is_unchanged():
    def example(**values):
        return tf.train.Example(
            features=tf.train.Features(
                feature={
                    name: tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[value.encode()])
                    )
                    for name, value in values.items()
                }
            )
        )

    def written(document):
        return tf.train.Example.FromString(
            serialize_example(executor._features(("0123", document)))
        )

    document = Document("A text.", "a.txt", 1)
    fields = {"text": "A text.", "doc_id": "0123", "source": "a.txt"}
    assert written(document) == example(**fields)
    assert written(document._replace(target="Sum.")) == example(
        **fields, **{features.TARGET_FEATURE: "Sum."}
    )


def test_reject_tuple_is_unchanged():
    # Rejects keep their four fields; only Document gained one.
    assert Reject._fields == ("reason", "source", "record", "detail")
    assert Document._fields == ("text", "source", "record", "target")
