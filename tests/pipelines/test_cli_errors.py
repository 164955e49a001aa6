"""Every configuration and command-line mistake is one line on stderr with
the fix, exit status 2, no traceback, and comes before any work."""

import os

import pytest

from textmill.pipelines.cli import main
from textmill.pipelines.work_dir_lock import WorkDirBusy, work_dir_lock


def _error(capsys, argv) -> str:
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _write(path, text) -> str:
    path.write_text(text)
    return str(path)


def test_unknown_preset_names_the_choices(capsys, tmp_path):
    line = _error(capsys, ["run", "--data", "x/*", "--preset", "bogus"])
    assert "train.preset='bogus'" in line
    assert "tiny, tiny4, distilgpt2, gpt2" in line


def test_missing_config_file(capsys, tmp_path):
    line = _error(
        capsys, ["run", "--data", "x/*", "--config", str(tmp_path / "no.yaml")]
    )
    assert "no such file" in line and "no.yaml" in line


@pytest.mark.parametrize(
    "yaml_text, expected",
    [
        ('train:\n  train_steps: "ten"\n', "train.train_steps must be a whole"),
        ("train:\n  batch_size: 8.5\n", "train.batch_size must be a whole"),
        ("ingest:\n  strict: 3\n", "ingest.strict must be true or false"),
        ("train: [\n", "not valid YAML at line"),
        ("train:\n  optimiser: adam\n", "unknown key(s) optimiser"),
    ],
)
def test_bad_config_values(capsys, tmp_path, yaml_text, expected):
    config = _write(tmp_path / "c.yaml", yaml_text)
    line = _error(capsys, ["run", "--data", "x/*", "--config", config])
    assert expected in line


def test_yaml_numbers_without_a_dot_are_numbers(tmp_path):
    from textmill.config import load_config

    config = load_config(
        _write(tmp_path / "c.yaml", "train:\n  learning_rate: 3e-4\n")
    )
    assert config.train.learning_rate == pytest.approx(3e-4)


def test_unwritable_serving_dir_fails_before_work(capsys, tmp_path):
    blocker = _write(tmp_path / "file", "not a directory")
    line = _error(
        capsys,
        [
            "run",
            "--data",
            "x/*",
            "--work-dir",
            str(tmp_path / "work"),
            "--serving-dir",
            os.path.join(blocker, "serving"),
        ],
    )
    assert "is not writable" in line and "--serving-dir" in line


def test_missing_init_from_dir(capsys, tmp_path):
    line = _error(
        capsys,
        [
            "run",
            "--data",
            "x/*",
            "--work-dir",
            str(tmp_path / "work"),
            "--init-from",
            str(tmp_path / "nope"),
        ],
    )
    assert "--init-from" in line and "no such directory" in line


def test_config_without_serving_dir_pushes_under_its_work_dir(tmp_path):
    from textmill.pipelines.cli import _config_from_args, build_parser

    config_path = _write(tmp_path / "c.yaml", "train:\n  train_steps: 5\n")
    args = build_parser().parse_args(
        ["run", "--data", "x/*", "--config", config_path, "--work-dir", "w2"]
    )
    config = _config_from_args(args)
    assert config.serving_dir == os.path.join("w2", "serving")
    in_file = _write(tmp_path / "d.yaml", "serving_dir: /srv/models\n")
    args = build_parser().parse_args(
        ["run", "--data", "x/*", "--config", in_file, "--work-dir", "w2"]
    )
    assert _config_from_args(args).serving_dir == "/srv/models"


def test_second_run_on_a_work_dir_is_refused(capsys, tmp_path):
    work_dir = str(tmp_path / "work")
    with work_dir_lock(work_dir):
        with pytest.raises(WorkDirBusy, match=f"pid {os.getpid()}"):
            with work_dir_lock(work_dir):
                pass
        line = _error(capsys, ["run", "--data", "x/*", "--work-dir", work_dir])
        assert f"pid {os.getpid()}" in line and "--work-dir" in line
    # Released on exit: the next holder gets it.
    with work_dir_lock(work_dir):
        pass


def test_verbose_is_accepted_after_the_command():
    from textmill.pipelines.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["corpus", "d", "--verbose"]).verbose
    assert parser.parse_args(["-v", "corpus", "d"]).verbose
    assert not parser.parse_args(["corpus", "d"]).verbose


@pytest.fixture
def template(tmp_path):
    return _write(tmp_path / "t.json", '{"pipelineSpec": {"root": {}}}')


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--train-steps", "-5"], "train.train_steps must be >= 1"),
        (["--max-perplexity", "0.5"], "validation.max_perplexity must be > 1"),
        (["--data", "/local/x.txt"], "not on Cloud Storage"),
    ],
)
def test_submit_checks_what_run_checks(capsys, template, extra, expected):
    line = _error(
        capsys,
        ["submit", template, "--project", "p", "--region", "r", "--dry-run"]
        + extra,
    )
    assert expected in line


@pytest.mark.parametrize("cron", ["every day at 3", "0 3 * *", "61x * * * *"])
def test_schedule_rejects_a_bad_cron(capsys, template, cron):
    line = _error(
        capsys,
        ["schedule", template, "--project", "p", "--region", "r"]
        + ["--dry-run", "--cron", cron],
    )
    assert "is not a cron schedule" in line


@pytest.mark.parametrize(
    "cron", ["0 3 * * *", "TZ=Europe/Paris 0 3 * * 1-5", "*/15 * * JAN MON"]
)
def test_good_crons_pass(cron):
    from textmill.pipelines.vertex_cli import check_cron

    check_cron(cron)


def test_submit_of_a_missing_template(capsys, tmp_path):
    line = _error(
        capsys,
        ["submit", str(tmp_path / "nope.json"), "--project", "p"]
        + ["--region", "r", "--dry-run"],
    )
    assert "no such pipeline template" in line and "textmill compile" in line


def test_missing_teacher_directory_names_the_flag(capsys, tmp_path):
    line = _error(
        capsys,
        [
            "run",
            "--data",
            "x/*",
            "--work-dir",
            str(tmp_path / "w"),
            "--distill-from",
            str(tmp_path / "no-teacher"),
        ],
    )
    assert "--distill-from" in line
    assert "no such directory" in line
