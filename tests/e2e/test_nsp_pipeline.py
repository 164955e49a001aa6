"""The bert_nsp family through the whole local pipeline."""

import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401

from textmill.corpus.default_corpus import write_default_corpus
from textmill.pipelines.local import run_local

from .smoke_config import (
    assert_refused_by_baseline,
    run_one_step,
    smoke_config,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 1-step model on a fresh work dir, then the smoke configuration in
    the same work dir (ingest and Transform come from the cache)."""
    tmp_path = tmp_path_factory.mktemp("nsp")
    corpus = write_default_corpus(str(tmp_path / "corpus"), max_documents=80)
    config = smoke_config(
        tmp_path,
        "bert_nsp",
        [corpus],
        tokenizer={"vocab_size": 800},
        train={
            "batch_size": 16,
            "train_steps": 300,
            "learning_rate": 1e-3,
            "warmup_steps": 30,
            "checkpoint_every": 150,
        },
        # NSP needs more text and steps than a smoke run has. On these 80
        # modules a tiny BERT fits the train pairs and stays at chance on
        # eval pairs (0.52 on 200 after 300 steps). The default run's
        # corpus (`textmill corpus --with-packages`: 4,407 modules) is
        # blessed at 0.84 after 3,000 steps at 3e-4, but 407 + 600 of its
        # modules reached only 0.50 after 300 steps (sequence 64) and 0.58
        # after 600 (sequence 128; interval of the gain [-8 %, +44 %]).
        # Synthetic topical documents were fitted (train 0.64) but scored
        # 0.52 on eval. The baseline is reported here, not enforced, so the
        # export and serving path is tested.
        validation={"enforce_baseline": False},
    )
    one_step = run_one_step(config)
    return tmp_path, one_step, run_local(config)


def test_one_step_nsp_model_is_refused_against_the_baseline(runs):
    tmp_path, one_step, _ = runs
    assert_refused_by_baseline(one_step, "majority class")


def test_nsp_run_pushes_pair_scoring_model(runs):
    _, _, summary = runs
    assert "error" not in summary, summary.get("error")
    assert summary["pushed"], summary
    candidate = summary["validation"]["candidate"]
    assert 0 <= candidate["accuracy"] <= 1
    # The eval pairs alternate the classes.
    assert candidate["positive_fraction"] == 0.5
    parity = summary["tflite"]["variants"]["float32"]["parity"]
    assert parity["max_abs_logit_diff"] < 1e-3

    model = tf.saved_model.load(summary["serving_model_dir"])
    scores = model.signatures["serving_default"](
        sentence_a=tf.constant(["Return the path.", "Open a file."]),
        sentence_b=tf.constant(["It is absolute.", "Close it later."]),
    )["is_next_probability"].numpy()
    assert scores.shape == (2,) and np.all((0 <= scores) & (scores <= 1))
    with open(
        os.path.join(
            summary["serving_model_dir"], "assets.extra", "textmill.json"
        )
    ) as f:
        assert json.load(f)["family"] == "bert_nsp"


def test_last_val_accuracy_is_the_validators_accuracy(runs):
    """The Trainer's last val metrics and the gate score the same balanced
    eval pairs (a pair or two may flip between Keras and the SavedModel
    where the two logits tie)."""
    _, _, summary = runs
    with open(summary["training"]["history_csv"]) as f:
        last = list(csv.DictReader(f))[-1]
    candidate = summary["validation"]["candidate"]
    assert candidate["positive_fraction"] == 0.5
    assert float(last["val_sparse_categorical_accuracy"]) == pytest.approx(
        candidate["accuracy"], abs=2 / candidate["pairs"]
    )
