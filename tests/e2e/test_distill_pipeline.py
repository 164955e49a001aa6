"""Distillation end to end: a 4-layer teacher trained by a pipeline run,
then a 2-layer student distilled from its preset through `textmill run`."""

import csv
import json
import os
import subprocess
import sys

import keras_hub
import pytest
import yaml

from textmill.corpus.default_corpus import write_default_corpus
from textmill.pipelines.local import SUMMARY_FILE, run_local
from textmill.serving.model_metadata import read_model_metadata

from .smoke_config import smoke_config

pytestmark = pytest.mark.slow

TRAIN = {
    "sequence_length": 64,
    "batch_size": 16,
    "learning_rate": 3e-3,
    "warmup_steps": 10,
    "checkpoint_every": 50,
    "eval_steps": 4,
}
# Both runs are held to the default gate. At 100 steps the teacher can
# still sit at the unigram's perplexity (gain -0.3 %, 95 % interval
# [-1.2 %, +0.6 %] on one build machine); at 200 it measured 17.7 % below
# it [14.7 %, 20.5 %], and the student (40 steps) 18.1 % [15.3 %, 20.7 %],
# against the 5 % margin.
VALIDATION = {"max_eval_windows": 40}


@pytest.fixture(scope="module")
def teacher_and_student(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("distill")
    corpus = write_default_corpus(str(tmp_path / "corpus"), max_documents=120)
    teacher = run_local(
        smoke_config(
            tmp_path / "teacher",
            "distilgpt2",
            [corpus],
            tokenizer={"vocab_size": 1024},
            train={"preset": "tiny4", "train_steps": 200, **TRAIN},
            validation=VALIDATION,
            export={"tflite_variants": ["float32"], "parity_windows": 2},
        )
    )
    assert teacher["outcome"] == "pushed", teacher.get("validation")
    config = tmp_path / "student.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "train": TRAIN,
                "validation": VALIDATION,
                "export": {"tflite_variants": ["float32"], "parity_windows": 2},
                "beam_pipeline_args": ["--direct_num_workers=1"],
            }
        )
    )
    work_dir = tmp_path / "student"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "textmill.pipelines.cli",
            "run",
            "--family",
            "distilgpt2",
            "--preset",
            "tiny",
            "--distill-from",
            teacher["preset_dir"],
            "--data",
            corpus,
            "--train-steps",
            "40",
            "--work-dir",
            str(work_dir),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(work_dir / SUMMARY_FILE) as f:
        student = json.load(f)
    return teacher, student, done.stdout


def test_student_is_pushed_with_the_teachers_tokenizer(teacher_and_student):
    teacher, student, _ = teacher_and_student
    assert student["outcome"] == "pushed", student.get("validation")
    assert student["tflite_files"], student
    for name in ("vocab.json", "merges.txt"):
        with open(os.path.join(teacher["preset_dir"], name)) as f:
            theirs = f.read()
        with open(os.path.join(student["preset_dir"], name)) as f:
            assert f.read() == theirs, name
    backbone = keras_hub.models.GPT2Backbone.from_preset(student["preset_dir"])
    assert backbone.num_layers == 2
    metadata = read_model_metadata(student["serving_model_dir"])
    assert metadata["distilled_from"] == {
        "teacher_preset": teacher["preset_dir"],
        "temperature": 2.0,
        "kl_weight": 5.0,
        "lm_weight": 2.0,
        "cosine_weight": 1.0,
    }


def test_validation_reports_the_teacher_on_the_same_windows(
    teacher_and_student,
):
    teacher, student, stdout = teacher_and_student
    report = student["validation"]["teacher"]
    # The teacher's own run scored its SavedModel on the same eval split,
    # windows and tokenizer; the student's run scores its preset.
    assert report["perplexity"] == pytest.approx(
        teacher["validation"]["candidate"]["perplexity"], rel=1e-3
    )
    assert report["windows"] == student["validation"]["candidate"]["windows"]
    ratio = (
        student["validation"]["candidate"]["perplexity"]
        / (report["perplexity"])
    )
    assert report["student_teacher_ratio"] == pytest.approx(ratio)
    interval = report["interval_of_ratio"]
    assert interval["low"] <= ratio <= interval["high"]
    assert "teacher: perplexity" in stdout
    assert "student/teacher" in stdout


def test_training_logs_each_term_and_its_throughput(teacher_and_student):
    teacher, student, _ = teacher_and_student
    with open(student["training"]["history_csv"]) as f:
        rows = list(csv.DictReader(f))
    assert {"kl_loss", "lm_loss", "cosine_loss"} <= set(rows[0])
    for row in rows:  # the config's weights: 5 KL + 2 LM + 1 cosine
        total = (
            5 * float(row["kl_loss"])
            + 2 * float(row["lm_loss"])
            + float(row["cosine_loss"])
        )
        assert float(row["loss"]) == pytest.approx(total, rel=1e-4)
    assert student["training"]["distilled"] is True
    assert teacher["training"]["distilled"] is False
    for summary in (teacher, student):
        training = summary["training"]
        assert training["train_tokens_per_second"] == pytest.approx(
            training["train_tokens"] / training["train_seconds"], rel=0.01
        )
