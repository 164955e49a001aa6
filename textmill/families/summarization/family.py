"""The `summarization` family: a GPT-2 causal LM fine-tuned on
(document, summary) pairs in the "TL;DR:" prompt format.

Training learns only the summary tokens (`loss_mask`), on one padded row
per example. Validation generates a greedy summary of every eval document
through the exported `summarize` signature and scores it against the
reference with ROUGE (`rouge1`, `rouge2`, `rougeL` F1, the `rouge_score`
package, stemmed); `rougeL` is the metric compared with the last blessed
model, and `perplexity` is the summary tokens' perplexity given the
document.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import tensorflow as tf
from rouge_score import rouge_scorer

from textmill.components.eval_windows import eval_rows
from textmill.components.model_validator.baselines import (
    token_counts,
    unigram_log_probs,
)
from textmill.components.model_validator.gate import (
    SAMPLES_KEY,
    metric_value,
    samples,
)
from textmill.config import PipelineConfig
from textmill.families.distilgpt2.family import CausalLMFamily, gpt2_preset
from textmill.families.summarization.export import SummarizationServing
from textmill.families.summarization.transform import (  # noqa: F401  (Transform's entry)
    preprocessing_fn,
)
from textmill.features import (
    DOCUMENT_FEATURE,
    INPUT_IDS_FEATURE,
    LOSS_MASK_FEATURE,
    REFERENCE_FEATURE,
)
from textmill.serving.model_metadata import read_model_metadata
from textmill.serving.saved_model_scoring import SavedModelLogits, window_nll
from textmill.serving.signatures import SUMMARIZE
from textmill.trainer.data import prompted_lm_dataset

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
# Documents summarised per `summarize` call during validation.
_EVAL_BATCH = 16


@dataclasses.dataclass(frozen=True)
class EvalExample:
    """One transformed eval example.

    Args:
        input_ids: prompt and summary ids, without the leading end-of-text.
        loss_mask: 1 on the summary ids (and their end-of-text).
        document: the document as ingested.
        reference: the reference summary as ingested.
    """

    input_ids: np.ndarray
    loss_mask: np.ndarray
    document: str
    reference: str


def load_eval_examples(examples, count: int) -> list[EvalExample]:
    """The first `count` (0 = all) examples of the eval split, in the
    eval units' order.

    Raises:
        ValueError: the eval split holds no example.
    """
    spec = {
        INPUT_IDS_FEATURE: tf.io.RaggedFeature(tf.int64),
        LOSS_MASK_FEATURE: tf.io.RaggedFeature(tf.int64),
        DOCUMENT_FEATURE: tf.io.FixedLenFeature([], tf.string),
        REFERENCE_FEATURE: tf.io.FixedLenFeature([], tf.string),
    }
    return [
        EvalExample(
            input_ids=features[INPUT_IDS_FEATURE].astype(np.int32),
            loss_mask=features[LOSS_MASK_FEATURE].astype(np.int32),
            document=features[DOCUMENT_FEATURE].decode(),
            reference=features[REFERENCE_FEATURE].decode(),
        )
        for features in eval_rows(examples, spec, count)
    ]


def rouge_scores(
    predictions: list[str], references: list[str]
) -> dict[str, list[float]]:
    """Per-example ROUGE-1, -2 and -L F1 of predictions against
    references."""
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [
        scorer.score(reference, prediction)
        for prediction, reference in zip(predictions, references, strict=True)
    ]
    return {
        name: [score[name].fmeasure for score in scores] for name in ROUGE_TYPES
    }


def rouge(predictions: list[str], references: list[str]) -> dict:
    """Mean ROUGE-1, -2 and -L F1 of predictions against references."""
    return {
        name: float(np.mean(values))
        for name, values in rouge_scores(predictions, references).items()
    }


def _rouge_metrics(predictions: list[str], references: list[str]) -> dict:
    """`rouge`, with per-example samples for the gate's bootstrap."""
    per_type = rouge_scores(predictions, references)
    ones = np.ones(len(predictions))
    metrics: dict = {
        name: metric_value(name, values, ones)
        for name, values in per_type.items()
    }
    metrics[SAMPLES_KEY] = {
        key: value
        for name, values in per_type.items()
        for key, value in samples(name, values, ones).items()
    }
    return metrics


def lead_sentence(document: str) -> str:
    """The document's first sentence (Lead-1)."""
    return re.split(r"(?<=[.!?])\s+", document.strip(), maxsplit=1)[0]


def summarize(model, documents: list[str], max_new_tokens: int) -> list[str]:
    """Greedy summaries of `documents` by a loaded SavedModel's
    `summarize` signature."""
    signature = model.signatures[SUMMARIZE]
    summaries = []
    for start in range(0, len(documents), _EVAL_BATCH):
        out = signature(
            document=tf.constant(documents[start : start + _EVAL_BATCH]),
            max_new_tokens=tf.constant(max_new_tokens, tf.int32),
        )
        summaries.extend(text.decode() for text in out["completion"].numpy())
    return [summary.strip() for summary in summaries]


def _window(example: EvalExample, sequence_length: int, bos_id: int):
    """`[bos] + input_ids`, padded with 0 to `sequence_length + 1`."""
    window = np.zeros(sequence_length + 1, np.int32)
    ids = np.concatenate([[bos_id], example.input_ids])[: sequence_length + 1]
    window[: len(ids)] = ids
    return window


def _summary_labels(row: EvalExample, sequence_length: int, bos_id: int):
    """A row's window and the 0/1 weights of its labels (1 on summary
    tokens within the window)."""
    window = _window(row, sequence_length, bos_id)
    # Label i is input_ids[i]; its loss mask says whether it is summary.
    weights = np.zeros(len(window) - 1)
    mask = row.loss_mask[: len(weights)]
    weights[: len(mask)] = mask
    return window, weights


def _perplexity(nll: list[float], counts: list[float]) -> dict:
    return {
        "perplexity": metric_value("perplexity", nll, counts),
        SAMPLES_KEY: samples("perplexity", nll, counts),
    }


def summary_perplexity(
    logits_fn: SavedModelLogits, rows: list[EvalExample], bos_id: int
) -> dict:
    """Perplexity of the reference summaries' tokens given their prompts,
    with per-example samples."""
    nll, counts = [], []
    for row in rows:
        window, weights = _summary_labels(
            row, logits_fn.sequence_length, bos_id
        )
        losses = window_nll(
            logits_fn({"token_ids": window[None, :-1]})[0], window
        )
        nll.append(float((losses * weights).sum()))
        counts.append(float(weights.sum()))
    return _perplexity(nll, counts)


def _max_new_tokens(rows: list[EvalExample], sequence_length: int) -> int:
    """As long as the longest reference (in tokens, end of text included),
    up to half the context."""
    return min(
        max(int(row.loss_mask.sum()) for row in rows), sequence_length // 2
    )


class SummarizationFamily(CausalLMFamily):
    """A GPT-2 causal LM fine-tuned (or trained) to summarise: one padded
    row per example with a loss on the summary tokens, and a `summarize`
    signature."""

    dataset_fn = staticmethod(prompted_lm_dataset)
    serving_class = SummarizationServing

    def transform_config(self, config: PipelineConfig) -> dict:
        """Transform's custom_config: the causal LM's vocabulary settings
        and the longest (prompt + summary) sequence to emit."""
        return {
            **super().transform_config(config),
            "sequence_length": self.sequence_length(config),
        }

    def sequence_length(self, config: PipelineConfig) -> int:
        """train.sequence_length within the preset's position table."""
        preset = gpt2_preset(config.train.preset)
        return min(config.train.sequence_length, preset["max_sequence_length"])

    def evaluate(self, model_dir: str, examples, max_units: int) -> dict:
        """ROUGE of generated summaries and the summaries' perplexity."""
        rows = load_eval_examples(examples, max_units)
        metadata = read_model_metadata(model_dir)
        max_new_tokens = _max_new_tokens(rows, metadata["sequence_length"])
        model = tf.saved_model.load(model_dir)
        predictions = summarize(
            model, [row.document for row in rows], max_new_tokens
        )
        metrics = _rouge_metrics(predictions, [row.reference for row in rows])
        scored = summary_perplexity(
            SavedModelLogits(model_dir, model), rows, metadata["eos_id"]
        )
        return {
            **metrics,
            "perplexity": scored["perplexity"],
            "examples": len(rows),
            "max_new_tokens": max_new_tokens,
            SAMPLES_KEY: {**metrics[SAMPLES_KEY], **scored[SAMPLES_KEY]},
        }

    def baseline(self, model_dir: str, examples, max_units: int) -> dict:
        """Lead-1 (the document's first sentence) for ROUGE, and a smoothed
        unigram model of the train split's summary tokens for perplexity, on
        the examples `evaluate` scores."""
        rows = load_eval_examples(examples, max_units)
        metadata = read_model_metadata(model_dir)
        log_probs = unigram_log_probs(
            token_counts(
                examples,
                metadata["vocabulary_size"],
                INPUT_IDS_FEATURE,
                mask_feature=LOSS_MASK_FEATURE,
            )
        )
        nll, counts = [], []
        for row in rows:
            window, weights = _summary_labels(
                row, metadata["sequence_length"], metadata["eos_id"]
            )
            nll.append(float((-log_probs[window[1:]] * weights).sum()))
            counts.append(float(weights.sum()))
        metrics = _rouge_metrics(
            [lead_sentence(row.document) for row in rows],
            [row.reference for row in rows],
        )
        scored = _perplexity(nll, counts)
        return {
            "name": "Lead-1 / unigram",
            **metrics,
            "perplexity": scored["perplexity"],
            SAMPLES_KEY: {**metrics[SAMPLES_KEY], **scored[SAMPLES_KEY]},
        }

    def parity_inputs(self, model_dir: str, examples, count: int) -> list:
        """Inputs of the bare network for TFLite parity: eval examples."""
        metadata = read_model_metadata(model_dir)
        sequence_length = metadata["sequence_length"]
        return [
            {
                "token_ids": _window(row, sequence_length, metadata["eos_id"])[
                    None, :-1
                ]
            }
            for row in load_eval_examples(examples, count)
        ]
