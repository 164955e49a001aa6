"""Calling an exported model's bare network (`logits_from_ids`) from
Python, and the perplexity of a causal LM on packed windows."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the tokenizer ops models use

from textmill.features import TOKEN_IDS_FEATURE
from textmill.serving.signatures import LOGITS_FROM_IDS


class SavedModelLogits:
    """The `logits_from_ids` signature of a SavedModel as a function of
    named numpy inputs.

    Args:
        model_dir: the SavedModel directory.
        loaded: that SavedModel, when the caller has loaded it already.
    """

    def __init__(self, model_dir: str, loaded=None):
        loaded = loaded or tf.saved_model.load(model_dir)
        self._fn = loaded.signatures[LOGITS_FROM_IDS]
        self.input_specs = self._fn.structured_input_signature[1]
        first = next(iter(self.input_specs.values()))
        self.sequence_length = int(first.shape[1])

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Named int inputs [1, length] -> logits [1, ...]."""
        feed = {
            name: tf.constant(inputs[name], spec.dtype)
            for name, spec in self.input_specs.items()
        }
        return self._fn(**feed)["logits"].numpy()


def token_nll(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Negative log-likelihood of each label under its logits, by a
    stable log-sum-exp in float64.

    Args:
        logits: [n, vocab] logits.
        labels: [n] token ids.

    Returns:
        float64 array [n].
    """
    logits = logits.astype(np.float64)
    peak = logits.max(axis=-1, keepdims=True)
    log_z = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=-1))
    return log_z - logits[np.arange(len(labels)), labels]


def window_nll(logits: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Per-token negative log-likelihood of a window's labels.

    Args:
        logits: [sequence_length, vocab] logits for window[:-1].
        window: [sequence_length + 1] token ids.

    Returns:
        float64 array [sequence_length].
    """
    return token_nll(logits, window[1:])


def windows_nll(logits_fn, windows: np.ndarray) -> np.ndarray:
    """Per-token NLL of a causal LM over packed windows.

    Args:
        logits_fn: named inputs -> logits, as SavedModelLogits.
        windows: [n, sequence_length + 1] token ids.

    Returns:
        float [n, sequence_length]: the NLL of each window's next tokens.
    """
    return np.stack(
        [
            window_nll(logits_fn({TOKEN_IDS_FEATURE: w[np.newaxis, :-1]})[0], w)
            for w in windows
        ]
    )


def perplexity(logits_fn, windows: np.ndarray) -> float:
    """exp(mean token NLL) of a causal LM over packed windows (see
    `windows_nll`)."""
    return float(np.exp(windows_nll(logits_fn, windows).mean()))
