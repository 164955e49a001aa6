"""The real executor and Beam pipeline, in-process on the DirectRunner."""

import glob
import gzip
import hashlib
import json
import os

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.metrics.metric import MetricsFilter
from tfx.types import standard_artifacts

from textmill.components.text_example_gen import (
    REPORT_FILENAME,
    IngestError,
    spec,
)
from textmill.components.text_example_gen.executor import (
    METRICS_NAMESPACE,
    REASONS,
    Executor,
)
from textmill.corpus.default_corpus import write_default_corpus

MULTI_PROCESSING = ["--direct_running_mode=multi_processing"]


def run_executor(tmp_path, patterns, beam_args=(), name="examples", **params):
    """Runs the executor; returns the Examples artifact, report and pipeline.

    The pipeline is made here rather than from `beam_pipeline_args`, which
    would make TFX build a source package of itself for the workers.
    """
    properties = {
        spec.INPUT_PATTERNS_KEY: json.dumps([str(p) for p in patterns]),
        spec.INPUT_FORMAT_KEY: "auto",
        spec.TEXT_FIELD_KEY: "text",
        spec.TEXT_UNIT_KEY: "file",
        spec.MIN_CHARS_KEY: 1,
        spec.MAX_CHARS_KEY: 1_000_000,
        spec.EVAL_FRACTION_KEY: 0.3,
        spec.STRICT_KEY: False,
        **params,
    }
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / name)
    pipelines = []

    def make_beam_pipeline():
        pipelines.append(beam.Pipeline(argv=list(beam_args)))
        return pipelines[-1]

    context = Executor.Context(
        tmp_dir=str(tmp_path / "tmp"), make_beam_pipeline_fn=make_beam_pipeline
    )
    Executor(context).Do({}, {spec.EXAMPLES_KEY: [examples]}, properties)
    with open(os.path.join(examples.uri, REPORT_FILENAME)) as f:
        return examples, json.load(f), pipelines[0]


def read_split(examples, split):
    """Returns the split's examples as {doc_id: (text, source)}."""
    paths = sorted(
        glob.glob(os.path.join(examples.uri, f"Split-{split}", "*.gz"))
    )
    assert paths, f"no TFRecord file in Split-{split}"
    rows = {}
    for record in tf.data.TFRecordDataset(paths, compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        doc_id = feature["doc_id"].bytes_list.value[0].decode()
        assert doc_id not in rows
        rows[doc_id] = (
            feature["text"].bytes_list.value[0].decode(),
            feature["source"].bytes_list.value[0].decode(),
        )
    return rows


def read_all(examples):
    return {**read_split(examples, "train"), **read_split(examples, "eval")}


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def jsonl(*values) -> bytes:
    return "".join(json.dumps(v) + "\n" for v in values).encode()


def test_every_format_with_and_without_gzip(tmp_path):
    data = tmp_path / "in"
    write(data / "a.txt", b"  Plain   text\tfile.  \n\n\nSecond paragraph.\n")
    write(data / "b.txt.gz", gzip.compress(b"Gzipped text file."))
    write(data / "c.jsonl", jsonl({"text": "JSON one."}, {"text": "JSON two."}))
    write(data / "d.jsonl.gz", gzip.compress(jsonl({"text": "Gzipped JSON."})))
    write(data / "e.csv", b'id,text\n1,"CSV, quoted."\n2,CSV plain.\n')
    write(data / "f.csv.gz", gzip.compress(b"text\nGzipped CSV.\n"))

    examples, report, _ = run_executor(tmp_path, [data / "*"])

    rows = read_all(examples)
    by_text = {text: source for text, source in rows.values()}
    assert by_text == {
        "Plain text file.\n\nSecond paragraph.": str(data / "a.txt"),
        "Gzipped text file.": str(data / "b.txt.gz"),
        "JSON one.": str(data / "c.jsonl"),
        "JSON two.": str(data / "c.jsonl"),
        "Gzipped JSON.": str(data / "d.jsonl.gz"),
        "CSV, quoted.": str(data / "e.csv"),
        "CSV plain.": str(data / "e.csv"),
        "Gzipped CSV.": str(data / "f.csv.gz"),
    }
    for doc_id, (text, _) in rows.items():
        assert doc_id == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert report["files_read"] == 6
    assert report["documents_read"] == 8
    assert sum(report["written"].values()) == 8
    assert report["skipped_total"] == 0
    # The standard Examples layout and properties StatisticsGen reads.
    assert examples.split_names == '["train", "eval"]'
    assert examples.get_string_custom_property("file_format") == (
        "tfrecords_gzip"
    )
    assert examples.get_string_custom_property("payload_format") == (
        "FORMAT_TF_EXAMPLE"
    )
    assert examples.get_int_custom_property("documents_read") == 8
    assert glob.glob(
        os.path.join(examples.uri, "Split-train", "data_tfrecord-*.gz")
    )


def test_paragraph_unit_splits_plain_text(tmp_path):
    path = write(tmp_path / "a.txt", b"One.\n\nTwo.\n \nThree.\n")
    examples, report, _ = run_executor(tmp_path, [path], text_unit="paragraph")
    assert sorted(t for t, _ in read_all(examples).values()) == [
        "One.",
        "Three.",
        "Two.",
    ]
    assert report["documents_read"] == 3


def bad_inputs(data):
    """Writes one file per kind of bad input; returns the good texts."""
    good = [f"Good document number {i}." for i in range(5)]
    write(data / "empty.txt", b"")
    write(data / "latin1.txt", "café au lait".encode("latin-1"))
    write(
        data / "mixed.jsonl",
        jsonl({"text": good[0]})
        + b"{not json\n"
        + jsonl({"body": "no text field"}, {"text": 42})
        + jsonl({"text": " \t \n "})  # empty after normalisation
        + jsonl({"text": "Tiny."})  # too short
        + jsonl({"text": "Long. " * 100})  # too long
        + jsonl({"text": f"  {good[1]}  "}),
    )
    write(
        data / "rows.csv",
        f'id,text\n1,"{good[2]}"\n2,too,many\n3,"bad"quote\n4,{good[4]}\n'.encode(),
    )
    write(data / "nocolumn.csv", b"id,body\n1,Some text.\n")
    lines = jsonl(*({"text": f"Gzip line {i}."} for i in range(3000)))
    compressed = gzip.compress(lines)
    write(data / "truncated.jsonl.gz", compressed[: len(compressed) // 2])
    # The same text as mixed.jsonl's first record, after normalisation.
    write(data / "zz_duplicate.txt", f"\n{good[0]}   \n".encode())
    write(data / "zz_good.txt", good[3].encode())
    return good


def test_bad_inputs_are_counted_by_reason(tmp_path):
    good = bad_inputs(tmp_path / "in")
    examples, report, pipeline = run_executor(
        tmp_path,
        [tmp_path / "in" / "*"],
        min_chars=10,
        max_chars=500,
    )

    assert report["skipped"] == {
        "empty_file": 1,
        "undecodable_utf8": 1,
        "malformed_json": 1,
        "missing_field": 3,
        "malformed_csv": 2,
        "corrupt_gzip": 1,
        "empty_after_normalization": 1,
        "too_short": 1,
        "too_long": 1,
        "empty_target": 0,  # no target_field
        "duplicate": 1,
    }
    assert list(report["skipped"]) == list(REASONS)
    rows = read_all(examples)
    texts = {text: source for text, source in rows.values()}
    # Good records made it; the first copy of the duplicate was kept.
    assert {t for t in texts if t.startswith("Good")} == set(good)
    assert texts[good[0]].endswith("mixed.jsonl")
    assert texts[good[3]].endswith("zz_good.txt")
    # The truncated gzip file kept a prefix of its lines.
    gzip_lines = sorted(
        int(t.split()[2].rstrip(".")) for t in texts if t.startswith("Gzip")
    )
    assert 0 < len(gzip_lines) < 3000
    assert gzip_lines == list(range(len(gzip_lines)))
    # Every document read was written or skipped after reading.
    filtered = ("empty_after_normalization", "too_short", "too_long")
    assert report["documents_read"] == sum(report["written"].values()) + sum(
        report["skipped"][r] for r in (*filtered, "duplicate")
    )
    assert sum(report["written"].values()) == len(rows)
    assert report["skipped_total"] == 13
    quoted = {e["reason"]: e for e in report["skipped_examples"]}
    assert set(quoted) == set(REASONS) - {"empty_target"}
    assert quoted["malformed_json"]["record"] == 2
    assert quoted["malformed_json"]["source"].endswith("mixed.jsonl")
    assert quoted["duplicate"]["source"].endswith("zz_duplicate.txt")
    assert quoted["corrupt_gzip"]["record"] == len(gzip_lines) + 1
    # Beam counters per reason.
    counters = pipeline.result.metrics().query(
        MetricsFilter().with_namespace(METRICS_NAMESPACE)
    )["counters"]
    committed = {c.key.metric.name: c.committed for c in counters}
    for reason, count in report["skipped"].items():
        assert committed.get(f"skipped_{reason}", 0) == count
    assert committed["documents_read"] == report["documents_read"]


def test_strict_mode_names_file_record_reason_and_fix(tmp_path):
    write(tmp_path / "a.jsonl", jsonl({"text": "fine"}) + b"{broken\n")
    with pytest.raises(IngestError) as raised:
        run_executor(tmp_path, [tmp_path / "a.jsonl"], strict=True)
    message = str(raised.value)
    assert f"{tmp_path / 'a.jsonl'}: record 2: malformed_json" in message
    assert "Fix: write one JSON object per line" in message


def test_strict_mode_accepts_filtered_documents(tmp_path):
    write(tmp_path / "a.jsonl", jsonl({"text": "short"}, {"text": "short"}))
    _, report, _ = run_executor(
        tmp_path, [tmp_path / "a.jsonl"], strict=True, min_chars=10
    )
    assert report["skipped"]["too_short"] == 2


def test_pattern_without_files_names_the_pattern(tmp_path):
    write(tmp_path / "a.txt", b"text")
    missing = str(tmp_path / "nothing" / "*.jsonl")
    with pytest.raises(IngestError, match="nothing/\\*.jsonl' matches no file"):
        run_executor(tmp_path, [tmp_path / "a.txt", missing])


def test_report_is_valid_json_written_atomically(tmp_path):
    write(tmp_path / "a.txt", b"text")
    examples, report, _ = run_executor(tmp_path, [tmp_path / "a.txt"])
    assert sorted(os.listdir(examples.uri)) == [
        "Split-eval",
        "Split-train",
        REPORT_FILENAME,
    ]
    assert report["schema_version"] == 1
    assert report["input_patterns"] == [str(tmp_path / "a.txt")]
    assert report["config"]["eval_fraction"] == 0.3
    assert report["written"] == {"train": 1, "eval": 0} or report[
        "written"
    ] == {"train": 0, "eval": 1}
    # An empty split still has a (empty) TFRecord file.
    assert len(read_all(examples)) == 1


def test_default_corpus_is_ingested(tmp_path):
    corpus = write_default_corpus(str(tmp_path / "corpus"), max_documents=8)
    examples, report, _ = run_executor(tmp_path, [corpus], min_chars=200)
    assert report["documents_read"] == 8
    assert sum(report["written"].values()) == 8
    assert all(len(t) >= 200 for t, _ in read_all(examples).values())


@pytest.mark.slow
def test_same_examples_for_one_and_two_worker_processes(tmp_path):
    bad_inputs(tmp_path / "in")
    pattern = [tmp_path / "in" / "*"]
    results = [
        run_executor(
            tmp_path,
            pattern,
            [*MULTI_PROCESSING, f"--direct_num_workers={workers}"],
            name=f"examples_{workers}",
        )
        for workers in (1, 2)
    ]
    (one, one_report, _), (two, two_report, _) = results
    for split in ("train", "eval"):
        assert read_split(one, split) == read_split(two, split)
    assert one_report == two_report


@pytest.mark.slow
def test_strict_error_survives_worker_processes(tmp_path):
    write(tmp_path / "a.txt", b"caf\xe9")
    with pytest.raises(IngestError, match="record 1: undecodable_utf8"):
        run_executor(
            tmp_path,
            [tmp_path / "a.txt"],
            [*MULTI_PROCESSING, "--direct_num_workers=2"],
            strict=True,
        )
