"""MeanNLL: one mean over every weighted label of the eval set."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from textmill.trainer.mean_nll import NLL_METRIC, MeanNLL

VOCAB, LENGTH = 7, 5


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _token_nll(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    picked = np.take_along_axis(_log_softmax(logits), labels[..., None], -1)
    return -picked[..., 0]


def test_weights_every_label_and_ignores_zero_weights():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, LENGTH, VOCAB)).astype("float32")
    labels = rng.integers(0, VOCAB, (3, LENGTH))
    weights = np.zeros((3, LENGTH), "float32")
    weights[0], weights[1, :1], weights[2, :3] = 1, 1, 2
    metric = MeanNLL()
    metric.update_state(labels, logits, weights)
    nll = _token_nll(logits, labels)
    expected = (nll * weights).sum() / weights.sum()
    assert float(metric.result()) == pytest.approx(expected, rel=1e-6)
    # A row weight weighs each label of its row; none weighs all alike.
    metric.reset_state()
    metric.update_state(labels, logits, np.array([1.0, 0.0, 3.0]))
    expected = (nll[0].sum() + 3 * nll[2].sum()) / (4 * LENGTH)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-6)
    metric.reset_state()
    metric.update_state(labels, logits)
    assert float(metric.result()) == pytest.approx(nll.mean(), rel=1e-6)


def test_val_nll_is_the_whole_eval_sets_mean_where_val_loss_is_not():
    """Rows with unequal numbers of target tokens, in batches of two:
    Keras's val_loss averages the batches' means by rows; val_nll divides
    the summed NLL by the summed weights once, as the validator does."""
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, VOCAB, (3, LENGTH)).astype("int32")
    labels = rng.integers(0, VOCAB, (3, LENGTH)).astype("int32")
    weights = np.zeros((3, LENGTH), "float32")
    for row, targets in enumerate((5, 1, 2)):
        weights[row, :targets] = 1
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((LENGTH,), dtype="int32"),
            keras.layers.Embedding(VOCAB, VOCAB),
        ]
    )
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        ),
        weighted_metrics=[MeanNLL()],
    )
    eval_ds = tf.data.Dataset.from_tensor_slices(
        (tokens, labels, weights)
    ).batch(2)
    logs = model.evaluate(eval_ds, return_dict=True, verbose=0)
    nll = _token_nll(model.predict(tokens, verbose=0), labels)
    validator = (nll * weights).sum() / weights.sum()
    assert logs[NLL_METRIC] == pytest.approx(validator, rel=1e-6)
    # Keras's own loss: batch means, averaged by rows.
    first = (nll[:2] * weights[:2]).sum() / weights[:2].sum()
    second = (nll[2] * weights[2]).sum() / weights[2].sum()
    assert logs["loss"] == pytest.approx((2 * first + second) / 3, rel=1e-5)
    assert abs(logs["loss"] - validator) > 1e-3
