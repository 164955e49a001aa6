"""The eval loss the gate measures: one mean over every weighted label."""

from __future__ import annotations

import keras
from keras import ops

NLL_METRIC = "nll"
# Its eval value in the Trainer's logs and history.csv.
VAL_NLL = f"val_{NLL_METRIC}"


@keras.saving.register_keras_serializable(package="textmill")
class MeanNLL(keras.metrics.Metric):
    """Mean negative log-likelihood of integer labels under logits, every
    label weighted by its sample weight, over all batches since the last
    reset: `sum(nll * weight) / sum(weight)`.

    This is what ModelValidator's perplexity is the exponential of (see
    `components/model_validator/gate.py`): NLL and weights are summed over
    the whole eval set and divided once. Keras's `val_loss` instead
    averages each batch's loss and then the batches by their rows, which
    differs wherever rows carry unequal weights (summaries of different
    lengths, masked windows with fewer masks, a short last batch).

    Args:
        name: the metric's name; Keras logs its eval value as
            `val_<name>`.
        **kwargs: passed to `keras.metrics.Metric`.

    Call arguments (`update_state`):
        y_true: int labels [batch, ...].
        y_pred: logits [batch, ..., classes].
        sample_weight: weights broadcastable to `y_true`'s shape (1 for
            every label when None).

    Example:
        model.compile(optimizer="adamw", loss=..., weighted_metrics=[
            MeanNLL()])
        model.evaluate(eval_ds, return_dict=True)["nll"]
    """

    def __init__(self, name: str = NLL_METRIC, **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable((), "zeros", "float32", name="total")
        self.count = self.add_variable((), "zeros", "float32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        nll = keras.losses.sparse_categorical_crossentropy(
            y_true, ops.cast(y_pred, "float32"), from_logits=True
        )
        if sample_weight is None:
            weight = ops.ones_like(nll)
        else:
            weight = ops.cast(sample_weight, "float32")
            # Row weights [batch] weigh every label of their row.
            while len(weight.shape) < len(nll.shape):
                weight = ops.expand_dims(weight, -1)
            weight = ops.broadcast_to(weight, ops.shape(nll))
        self.total.assign_add(ops.sum(nll * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)
