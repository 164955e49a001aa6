import json
import os

import pytest
from ml_metadata import metadata_store
from tfx import v1 as tfx

from textmill.components.text_example_gen import (
    REPORT_FILENAME,
    IngestError,
    TextExampleGen,
    spec,
)
from textmill.components.text_example_gen.driver import TextExampleGenDriver
from textmill.components.text_example_gen.files import input_fingerprint
from textmill.config import IngestConfig


def test_parameters_are_recorded():
    gen = TextExampleGen(
        input_patterns=["a/*.jsonl", "gs://b/c.csv.gz"],
        input_format="jsonl",
        text_field="body",
        text_unit="paragraph",
        min_chars=0,
        max_chars=50,
        eval_fraction=0.25,
        strict=True,
    )
    properties = gen.exec_properties
    assert json.loads(properties[spec.INPUT_PATTERNS_KEY]) == [
        "a/*.jsonl",
        "gs://b/c.csv.gz",
    ]
    assert properties[spec.INPUT_FORMAT_KEY] == "jsonl"
    assert properties[spec.TEXT_FIELD_KEY] == "body"
    assert properties[spec.TEXT_UNIT_KEY] == "paragraph"
    assert properties[spec.MIN_CHARS_KEY] == 0
    assert properties[spec.MAX_CHARS_KEY] == 50
    assert properties[spec.EVAL_FRACTION_KEY] == 0.25
    assert properties[spec.STRICT_KEY] is True
    assert list(gen.outputs) == [spec.EXAMPLES_KEY]
    assert gen.driver_class is TextExampleGenDriver


def test_defaults_are_the_pipeline_config_defaults():
    # One source of defaults: the component alone reads as the pipeline does.
    ingest = IngestConfig()
    properties = TextExampleGen(input_patterns="a.txt").exec_properties
    assert properties[spec.INPUT_FORMAT_KEY] == ingest.input_format
    assert properties[spec.TEXT_FIELD_KEY] == ingest.text_field
    assert properties[spec.TEXT_UNIT_KEY] == ingest.text_unit
    assert properties[spec.MIN_CHARS_KEY] == ingest.min_chars == 32
    assert properties[spec.MAX_CHARS_KEY] == ingest.max_chars
    assert properties[spec.EVAL_FRACTION_KEY] == ingest.eval_fraction
    assert properties[spec.STRICT_KEY] is ingest.strict
    assert properties.get(spec.TARGET_FIELD_KEY) is None


def test_a_single_pattern_string_is_accepted():
    gen = TextExampleGen(input_patterns="data/*.txt")
    assert json.loads(gen.exec_properties[spec.INPUT_PATTERNS_KEY]) == [
        "data/*.txt"
    ]


@pytest.mark.parametrize(
    "argument, value",
    [
        ("input_patterns", []),
        ("input_patterns", ["a.txt", ""]),
        ("input_patterns", [3]),
        ("input_format", "xml"),
        ("text_field", ""),
        ("text_unit", "sentence"),
        ("min_chars", -1),
        ("min_chars", 2.5),
        ("min_chars", True),
        ("max_chars", 0),
        ("eval_fraction", 0.0),
        ("eval_fraction", 1.0),
        ("eval_fraction", "0.1"),
        ("strict", "yes"),
    ],
)
def test_invalid_argument_names_argument_value_and_fix(argument, value):
    kwargs = {"input_patterns": ["a.txt"], argument: value}
    with pytest.raises(ValueError) as raised:
        TextExampleGen(**kwargs)
    message = str(raised.value)
    assert f"{argument}={value!r}" in message
    assert "Fix: " in message


def test_max_chars_below_min_chars_is_rejected():
    with pytest.raises(ValueError, match=r"max_chars=5\. Fix: .*>= min_chars"):
        TextExampleGen(input_patterns=["a.txt"], min_chars=10, max_chars=5)


def test_fingerprint_follows_size_and_mtime(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("one")
    first = input_fingerprint([str(tmp_path / "*.txt")])
    assert input_fingerprint([str(path)]) == first
    assert first.startswith("files:1,bytes:3,")
    os.utime(path, (1_000_000, 1_000_000))
    assert input_fingerprint([str(path)]) != first
    with pytest.raises(IngestError, match="'.*missing' matches no file"):
        input_fingerprint([str(tmp_path / "missing")])


def run_local(tmp_path, input_patterns):
    """Runs a one-component pipeline; returns the Examples artifact URIs."""
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(
        str(tmp_path / "metadata.db")
    )
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="text_example_gen_test",
        pipeline_root=str(tmp_path / "root"),
        components=[TextExampleGen(input_patterns=input_patterns)],
        enable_cache=True,
        metadata_connection_config=connection,
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)
    store = metadata_store.MetadataStore(connection)
    return [a.uri for a in store.get_artifacts_by_type("Examples")]


def test_local_dag_runner_caches_until_an_input_changes(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("A first document.")
    patterns = [str(data / "*.txt")]

    first = run_local(tmp_path, patterns)
    assert len(first) == 1
    assert os.path.exists(os.path.join(first[0], REPORT_FILENAME))
    assert run_local(tmp_path, patterns) == first  # cached

    (data / "a.txt").write_text("A changed document.")
    changed = run_local(tmp_path, patterns)
    assert len(changed) == 2  # re-ran

    (data / "b.txt").write_text("A new file.")
    assert len(run_local(tmp_path, patterns)) == 3  # re-ran
