"""The summarization family through the whole local pipeline."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401

from textmill.corpus.default_corpus import write_summary_corpus
from textmill.families.summarization import ROUGE_TYPES
from textmill.pipelines.local import run_local
from textmill.serving.summarization_export import SUMMARIZE
from textmill.transform.summarization import summarization_prompt

from .smoke_config import smoke_config

pytestmark = pytest.mark.slow

DOCUMENT = (
    "The list is sorted in place, and the sort is stable: items that "
    "compare equal keep their order."
)


def test_summarization_run_pushes_a_summarizer(tmp_path):
    corpus = write_summary_corpus(str(tmp_path / "corpus"), max_documents=400)
    # A record without a summary is counted, not lost silently.
    bad = tmp_path / "corpus" / "bad.jsonl"
    bad.write_text(json.dumps({"text": "A description with no summary."}))
    config = smoke_config(
        tmp_path,
        "summarization",
        [corpus, str(bad)],
        train={"sequence_length": 96, "train_steps": 12, "checkpoint_every": 6},
        validation={"max_eval_windows": 8},
    )
    summary = run_local(config)
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
