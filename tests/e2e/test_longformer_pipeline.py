"""The longformer family through the whole local pipeline."""

import os

import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401

from textmill.corpus.default_corpus import write_default_corpus
from textmill.pipelines.local import run_local

from .smoke_config import (
    assert_curve_ends_at_the_gate,
    assert_refused_by_baseline,
    run_one_step,
    smoke_config,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 1-step model on a fresh work dir, then the smoke configuration in
    the same work dir (ingest and Transform come from the cache)."""
    tmp_path = tmp_path_factory.mktemp("longformer")
    corpus = write_default_corpus(str(tmp_path / "corpus"), max_documents=80)
    config = smoke_config(
        tmp_path,
        "longformer",
        [corpus],
        train={
            "batch_size": 16,
            # 300 steps leave the masked-token perplexity only 4.8 %
            # below the unigram's, under the default 5 % margin.
            "train_steps": 450,
            "learning_rate": 3e-3,
            "warmup_steps": 30,
            "checkpoint_every": 150,
        },
    )
    one_step = run_one_step(config)
    return tmp_path, one_step, run_local(config)


def test_one_step_longformer_is_refused_against_the_baseline(runs):
    tmp_path, one_step, _ = runs
    assert_refused_by_baseline(one_step, "most frequent token")


def test_longformer_run_pushes_fill_mask_and_embedding_model(runs):
    tmp_path, _, summary = runs
    assert "error" not in summary, summary.get("error")
    assert summary["pushed"], summary
    assert summary["serving_model_dir"].startswith(
        str(tmp_path / "serving" / "longformer")
    )
    candidate = summary["validation"]["candidate"]
    assert 0 <= candidate["accuracy"] <= 1 and candidate["perplexity"] > 1
    parity = summary["tflite"]["variants"]["float32"]["parity"]
    assert parity["max_abs_logit_diff"] < 1e-3

    model = tf.saved_model.load(summary["serving_model_dir"])
    filled = model.signatures["fill_mask"](
        text=tf.constant(["Return the <mask> of a <mask>.", "One <mask>."])
    )
    assert filled["num_masks"].numpy().tolist() == [2, 1]
    assert filled["top_tokens"].shape[:2] == (2, 2)
    # Candidates are sorted by score.
    scores = filled["top_scores"].numpy()
    assert (scores[..., :-1] >= scores[..., 1:]).all()
    embedding = model.signatures["embed"](text=tf.constant(["a", "b c"]))
    assert embedding["embedding"].shape == (2, 64)
    assert os.path.exists(
        os.path.join(
            summary["serving_model_dir"], "tflite", "model_int8.tflite"
        )
    )


def test_last_val_nll_is_the_validators_log_perplexity(runs):
    """The Trainer's val_nll scores the validator's masked eval windows
    (same windows, same masked positions, all <mask>): its last point is
    the log of the gate's masked-token perplexity."""
    assert_curve_ends_at_the_gate(runs[2])
