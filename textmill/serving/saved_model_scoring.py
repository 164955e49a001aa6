"""Scoring an exported causal LM through its `logits_from_ids` signature."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the tokenizer ops models use

from textmill.serving.signatures import LOGITS_FROM_IDS


def window_nll(logits: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Per-token negative log-likelihood of a window's labels.

    Args:
        logits: [sequence_length, vocab] logits for window[:-1].
        window: [sequence_length + 1] token ids.

    Returns:
        float64 array [sequence_length].
    """
    logits = logits.astype(np.float64)
    peak = logits.max(axis=-1, keepdims=True)
    log_z = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=-1))
    labels = window[1:]
    return log_z - logits[np.arange(len(labels)), labels]


class SavedModelLogits:
    """Calls `logits_from_ids` of a SavedModel on one window at a time.

    Args:
        model_dir: the SavedModel directory.
    """

    def __init__(self, model_dir: str):
        self._fn = tf.saved_model.load(model_dir).signatures[LOGITS_FROM_IDS]
        spec = self._fn.structured_input_signature[1]["token_ids"]
        self.sequence_length = int(spec.shape[1])

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """[sequence_length] ids -> [sequence_length, vocab] logits."""
        ids = tf.constant(inputs[np.newaxis, :], tf.int32)
        return self._fn(token_ids=ids)["logits"].numpy()[0]


def perplexity(logits_fn, windows: np.ndarray) -> float:
    """exp(mean token NLL) of `logits_fn` over packed windows."""
    nll = [window_nll(logits_fn(w[:-1]), w) for w in windows]
    return float(np.exp(np.concatenate(nll).mean()))
