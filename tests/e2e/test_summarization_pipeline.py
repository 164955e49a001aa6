"""The summarization family through the whole local pipeline."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401

from textmill.corpus.default_corpus import write_summary_corpus
from textmill.families.summarization.family import ROUGE_TYPES
from textmill.families.summarization.transform import summarization_prompt
from textmill.pipelines.local import run_local
from textmill.serving.signatures import SUMMARIZE

from .smoke_config import (
    assert_curve_ends_at_the_gate,
    assert_refused_by_baseline,
    run_one_step,
    smoke_config,
)

pytestmark = pytest.mark.slow

DOCUMENT = (
    "The list is sorted in place, and the sort is stable: items that "
    "compare equal keep their order."
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 1-step model on a fresh work dir, then the smoke configuration in
    the same work dir (ingest and Transform come from the cache)."""
    tmp_path = tmp_path_factory.mktemp("summarization")
    corpus = write_summary_corpus(str(tmp_path / "corpus"), max_documents=400)
    # A record without a summary is counted, not lost silently.
    bad = tmp_path / "corpus" / "bad.jsonl"
    bad.write_text(json.dumps({"text": "A description with no summary."}))
    config = smoke_config(
        tmp_path,
        "summarization",
        [corpus, str(bad)],
        train={
            "sequence_length": 96,
            "batch_size": 16,
            "train_steps": 200,
            "learning_rate": 3e-3,
            "warmup_steps": 20,
            "checkpoint_every": 100,
        },
        validation={"max_eval_windows": 8},
    )
    one_step = run_one_step(config)
    return tmp_path, one_step, run_local(config)


def test_one_step_summarizer_is_refused_against_the_baseline(runs):
    tmp_path, one_step, _ = runs
    assert_refused_by_baseline(one_step, "Lead-1 / unigram")


def test_last_val_nll_is_the_validators_log_perplexity(runs):
    """The Trainer's val_nll scores the validator's eval examples, their
    summary tokens only: its last point is the log of the gate's summary
    perplexity."""
    assert_curve_ends_at_the_gate(runs[2])


def test_summarization_run_pushes_a_summarizer(runs):
    _, _, summary = runs
    assert "error" not in summary, summary.get("error")
    assert summary["ingest"]["skipped"]["missing_field"] == 1, summary["ingest"]
    assert summary["pushed"], summary
    candidate = summary["validation"]["candidate"]
    for name in ROUGE_TYPES:
        assert 0 <= candidate[name] <= 1
    assert candidate["examples"] == 8
    assert np.isfinite(candidate["perplexity"]) and candidate["perplexity"] > 1
    parity = summary["tflite"]["variants"]["float32"]["parity"]
    assert parity["max_abs_logit_diff"] < 1e-3
    bundles = summary["tflite"]["litert_lm"]["variants"]
    assert bundles["float32"]["parity"]["identical"] == 5
    assert {os.path.basename(p) for p in summary["tflite_files"]} >= {
        "model_float32.litertlm",
        "model_int8.litertlm",
    }

    model = tf.saved_model.load(summary["serving_model_dir"])
    new_tokens = tf.constant(12, tf.int32)
    summarized = model.signatures[SUMMARIZE](
        document=tf.constant([DOCUMENT, "  " + DOCUMENT + "\n"]),
        max_new_tokens=new_tokens,
    )
    completions = summarized["completion"].numpy()
    assert completions[0] == completions[1]  # stripped like training data
    # The same summary through `generate`, prompted as in training.
    generated = model.signatures["generate"](
        prompt=summarization_prompt(tf.constant([DOCUMENT])),
        max_new_tokens=new_tokens,
    )
    assert generated["completion"].numpy()[0] == completions[0]
    with open(
        os.path.join(
            summary["serving_model_dir"], "assets.extra", "textmill.json"
        )
    ) as f:
        assert json.load(f)["family"] == "summarization"
