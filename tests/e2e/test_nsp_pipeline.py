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
        # A tiny BERT trained from scratch on NSP alone fits its train
        # pairs (0.65 after 300 steps) but does not generalise within a
        # smoke budget: 0.55 on the 200 balanced eval pairs against the
        # majority class's 0.5 (gain +10 %, 95 % interval [-9 %, +31 %]),
        # while a threshold on the share of B's tokens found in A, tuned
        # on the train pairs, gets 0.68 on the same eval pairs. Measured on
        # these pairs, eval accuracy stays within 0.485-0.535 with: NSP
        # alone for 1,000 steps (train 0.92); masked LM + NSP jointly
        # (BertPretrainer) for 300 steps, and for 1,200 on all 407
        # documents, where the NSP head stays at the prior; B swapped with
        # another pair's B in half of each batch (every A seen with both
        # labels) for 600-1,000 steps at 3e-4 or 1e-3, on 80 or 407
        # documents; query and key kernels initialised equal; token
        # embeddings initialised from an SVD of the train pairs'
        # co-occurrences. On all 407 documents (sequence 128) the pairs
        # are sound: labels match their pairs after Transform (300
        # checked), 256 train pairs are fitted to 1.0 in 150 steps, and
        # the share of B's words (3+ letters) found in A, at its best
        # threshold on each split, gets 0.74 (train) and 0.76 (eval). The
        # learning rate matters there: at 1e-3 the loss stays at 0.693 for
        # 800 steps; at 3e-4 it leaves that plateau after 300-450 steps,
        # then the model overfits: eval 0.59-0.61 at 400-600 steps, 0.58
        # at 1,000 (train 0.87). Here, 600 steps at 3e-4 reach train 0.80,
        # eval 0.525. The baseline is reported here, not enforced, so
        # the export and serving path is tested.
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
