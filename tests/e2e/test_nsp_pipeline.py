"""The bert_nsp family through the whole local pipeline."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401

from textmill.corpus.default_corpus import write_default_corpus
from textmill.pipelines.local import run_local

from .smoke_config import smoke_config

pytestmark = pytest.mark.slow


def test_nsp_run_pushes_pair_scoring_model(tmp_path):
    corpus = write_default_corpus(str(tmp_path / "corpus"), max_documents=80)
    config = smoke_config(
        tmp_path, "bert_nsp", [corpus], tokenizer={"vocab_size": 800}
    )
    summary = run_local(config)
    assert "error" not in summary, summary.get("error")
    assert summary["pushed"], summary
    candidate = summary["validation"]["candidate"]
    assert 0 <= candidate["accuracy"] <= 1
    # SentencePairGen balances the classes.
    assert 0.3 <= candidate["positive_fraction"] <= 0.7
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
