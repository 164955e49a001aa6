"""The longformer_classifier family through the whole local pipeline."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401

from textmill.corpus.default_corpus import write_label_corpus
from textmill.pipelines.local import run_local
from textmill.serving.client import ServingClient
from textmill.serving.model_repository import ModelRepository
from textmill.serving.model_server import ModelServer

from .doc_commands import code_blocks
from .smoke_config import (
    assert_refused_by_baseline,
    run_one_step,
    smoke_config,
)

pytestmark = pytest.mark.slow

TEXTS = [
    "Return the event loop of the current thread; create one if needed.",
    "Parse an RFC 2822 message and return its headers and payload.",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 1-step model on a fresh work dir, then the smoke configuration in
    the same work dir (ingest and Transform come from the cache)."""
    tmp_path = tmp_path_factory.mktemp("classifier")
    # The classes in turn: the first records are balanced.
    corpus = write_label_corpus(str(tmp_path / "corpus"), max_documents=420)
    config = smoke_config(
        tmp_path,
        "longformer_classifier",
        [corpus],
        ingest={"eval_fraction": 0.2},
        train={
            "batch_size": 16,
            "train_steps": 150,
            "learning_rate": 1e-3,
            "warmup_steps": 15,
            "checkpoint_every": 75,
        },
    )
    one_step = run_one_step(config)
    return tmp_path, one_step, run_local(config)


def test_one_step_classifier_is_refused_against_the_baseline(runs):
    _, one_step, _ = runs
    assert_refused_by_baseline(one_step, "majority class")


def test_classifier_is_blessed_over_the_majority_class_and_pushed(runs):
    tmp_path, _, summary = runs
    assert "error" not in summary, summary.get("error")
    assert summary["outcome"] == "pushed", summary["validation"]["reason"]
    metrics = summary["validation"]["metrics"]
    accuracy = metrics["accuracy"]
    assert accuracy["verdict"] == "pass"
    assert accuracy["interval_over_baseline"]["low"] > 0
    assert accuracy["candidate"] >= 1.05 * accuracy["baseline"]
    assert metrics["macro_f1"]["candidate"] > metrics["macro_f1"]["baseline"]
    version = summary["serving_model_dir"]
    assert version.startswith(str(tmp_path / "serving"))
    assert os.path.exists(os.path.join(version, "saved_model.pb"))
    assert os.path.exists(os.path.join(version, "tflite", "model_int8.tflite"))
    parity = summary["tflite"]["variants"]["float32"]["parity"]
    assert parity["max_abs_logit_diff"] < 1e-3
    assert parity["top1_agreement"] == 1.0


def test_classify_answers_raw_strings_locally_and_over_rest(runs):
    tmp_path, _, summary = runs
    model = tf.saved_model.load(summary["serving_model_dir"])
    local = model.signatures["classify"](text=tf.constant(TEXTS))
    names = [name.decode() for name in local["labels"].numpy()[0]]
    assert len(names) >= 4 and "email" in names
    probabilities = local["probabilities"].numpy()
    assert probabilities.shape == (2, len(names))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    labels = [label.decode() for label in local["label"].numpy()]
    assert labels == [names[i] for i in probabilities.argmax(axis=1)]

    with ModelServer(
        ModelRepository(str(tmp_path / "serving")), port=0
    ) as server:
        served = ServingClient(server.url, "longformer_classifier").predict(
            inputs=TEXTS, signature_name="classify"
        )
    assert served["label"] == labels
    np.testing.assert_allclose(
        served["probability"], probabilities.max(axis=1), rtol=1e-5
    )


def test_readme_classify_snippet_runs_as_written(runs):
    """The README's `classify` snippet, in a fresh process, prints what the
    pushed model answers here."""
    _, _, summary = runs
    placeholder = "work/serving/longformer_classifier/<version>"
    (snippet,) = [
        block
        for block in code_blocks("README.md", "python")
        if placeholder in block
    ]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            snippet.replace(placeholder, summary["serving_model_dir"]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    model = tf.saved_model.load(summary["serving_model_dir"])
    texts = [
        line.strip().strip('",')
        for line in snippet.splitlines()
        if line.startswith('    "')
    ]
    assert len(texts) == 3
    labels = model.signatures["classify"](text=tf.constant(texts))["label"]
    assert done.stdout.startswith(str(labels.numpy()))
