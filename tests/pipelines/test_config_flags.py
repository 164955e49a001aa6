"""The configuration flags: declared once, the same on every command."""

import argparse

import pytest

from textmill.config import ConfigError
from textmill.pipelines.cli import build_parser
from textmill.pipelines.config_flags import (
    CONFIG_FLAGS,
    check_runtime_flags,
    config_from_args,
)
from textmill.pipelines.vertex_cli import _compile_config

COMPILE = [
    "compile",
    "--project",
    "p",
    "--region",
    "r",
    "--pipeline-root",
    "gs://b/root",
    "--image",
    "img",
]
RUNTIME = {flag.flag for flag in CONFIG_FLAGS if flag.runtime}


def _options(command: str) -> set[str]:
    parser = build_parser()
    (subparsers,) = [
        action
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    return set(subparsers.choices[command]._option_string_actions)


@pytest.mark.parametrize("command", ["run", "compile"])
def test_run_and_compile_take_every_config_flag(command):
    expected = {flag.flag for flag in CONFIG_FLAGS} | {"--config"}
    assert expected <= _options(command)


@pytest.mark.parametrize("command", ["submit", "schedule"])
def test_submit_and_schedule_take_the_runtime_flags_only(command):
    options = _options(command)
    assert RUNTIME <= options
    assert RUNTIME == {"--data", "--train-steps", "--max-perplexity"} | {
        "--max-regression"
    }
    assert not ({flag.flag for flag in CONFIG_FLAGS} - RUNTIME) & options


def test_compile_reads_the_ingest_flags_run_reads():
    argv = ["--family", "summarization", "--data", "gs://b/x.jsonl"]
    argv += ["--text-field", "article", "--target-field", "highlights"]
    argv += ["--strict", "--max-perplexity", "50"]
    compiled = _compile_config(build_parser().parse_args(COMPILE + argv))
    ran = config_from_args(build_parser().parse_args(["run", *argv]))
    for config in (compiled, ran):
        assert config.ingest.text_field == "article"
        assert config.ingest.target_field == "highlights"
        assert config.ingest.strict is True
        assert config.ingest.input_patterns == ("gs://b/x.jsonl",)
        assert config.validation.max_perplexity == 50.0
    assert compiled.serving_dir == "gs://b/root/serving"


def test_label_field_is_the_classifiers_target_and_no_other_familys():
    argv = ["run", "--family", "longformer_classifier", "--data", "x.jsonl"]
    default = config_from_args(build_parser().parse_args(argv))
    assert default.target_field == "label"
    args = build_parser().parse_args([*argv, "--label-field", "queue"])
    config = config_from_args(args).validate()
    assert config.ingest.label_field == "queue"
    assert config.target_field == "queue"
    other = config_from_args(
        build_parser().parse_args(
            ["run", "--data", "x.txt", "--label-field", "queue"]
        )
    )
    with pytest.raises(ConfigError, match="label_field='queue'.*no labels"):
        other.validate()


def test_flags_override_the_config_file_and_unset_flags_do_not(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("ingest:\n  text_field: body\n  min_chars: 5\n")
    args = build_parser().parse_args(
        ["run", "--config", str(path), "--text-field", "article"]
    )
    config = config_from_args(args, work_dir=None)
    assert config.ingest.text_field == "article"
    assert config.ingest.min_chars == 5
    assert config.ingest.strict is False


def test_runtime_flags_are_checked_like_the_config():
    args = build_parser().parse_args(
        ["submit", "t.json", "--project", "p", "--region", "r"]
        + ["--max-regression", "-1"]
    )
    with pytest.raises(ConfigError, match=r"validation.max_regression"):
        check_runtime_flags(args)
