"""A custom training loop for MultiWorkerMirroredStrategy.

Keras 3's `model.fit` fails under `tf.distribute.MultiWorkerMirroredStrategy`
(keras-team/keras#20585), so `training.fit_resumable` trains a multi-worker
cluster with `fit_distributed` instead. It trains the compiled model as
Keras's TensorFlow `train_step` does, and keeps what `fit_resumable` promises:
epochs of a fixed number of steps, a validation loss after each, checkpoints
that survive a kill, `history.csv` rows and TensorBoard scalars.

Loss scaling across replicas: every replica computes the loss of its share of
the global batch with `model.compute_loss`. On the TensorFlow backend, Keras
3's losses already divide the reduced loss by the number of replicas in sync
(`keras.src.losses.loss.scale_loss_for_distribution`; regularisation losses
likewise), and `optimizer.apply_gradients` sums the gradients over replicas.
The applied gradient is therefore the gradient of the global-batch mean, as
on one device; the loop does not scale again. The tests check this
numerically: two workers take the same steps as one process with
`model.fit`. The loss the loop logs is unscaled again (times the replica
count), as Keras's loss tracker does.

Mixed precision: under the "mixed_float16" policy `model.compile` wraps the
optimizer in a `LossScaleOptimizer`; the loop scales the loss with
`optimizer.scale_loss` inside the tape (the identity for other optimizers),
and the wrapper's `apply_gradients` unscales and skips non-finite steps. It
decides to skip from each replica's own gradients, so the loop first makes
the replicas agree (`_agree_on_finite`): otherwise a step that overflows on
one replica only hangs the cluster.

Gradient clipping (`global_clipnorm`) is applied by the optimizer to each
replica's gradient before the cross-replica sum, as `model.fit` does under
MirroredStrategy.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import tempfile
from collections.abc import Callable

import keras
import tensorflow as tf

CHECKPOINT_SUBDIR = "loop"

StepFn = Callable[[object], tuple[tf.Tensor, tf.Tensor]]


def distribute(
    dataset: tf.data.Dataset, strategy: tf.distribute.Strategy
) -> tf.distribute.DistributedDataset:
    """Splits each global batch of `dataset` over the strategy's replicas.

    The elements are global batches; `experimental_distribute_dataset` cuts
    every one into per-replica batches, so the global batch size is the same
    for any layout. Sharding is by DATA: every worker reads the whole input
    and keeps its replicas' slices of each batch. FILE sharding (the AUTO
    default when the input has files) would give every worker its own files
    instead: it needs at least as many files as workers (Transform often
    writes a single one), and the workers' streams would differ in length and
    order, so a step's global batch would no longer be the batch one device
    sees. DATA costs redundant reading, which is small next to a language
    model's step.

    Args:
        dataset: batches of `(x, y)` or `(x, y, sample_weight)`.
        strategy: the strategy whose replicas consume the batches.

    Returns:
        The distributed dataset.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return strategy.experimental_distribute_dataset(
        dataset.with_options(options)
    )


def _batch_size(x) -> tf.Tensor:
    """Rows of a replica's batch (Keras weights its loss tracker by them)."""
    first = next(t for t in keras.tree.flatten(x) if t is not None)
    return tf.cast(tf.shape(first)[0], tf.float32)


def _replica_train_step(model: keras.Model, data) -> tuple[tf.Tensor, ...]:
    """One replica's forward and backward pass, as Keras's `train_step`.

    Args:
        model: a compiled model.
        data: the replica's `(x, y)` or `(x, y, sample_weight)`.

    Returns:
        The replica's unscaled loss times its batch size, and the batch size.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        # Already divided by the replica count (see the module docstring).
        loss = model.compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
        )
        scaled = model.optimizer.scale_loss(loss)
    variables = model.trainable_variables
    gradients = tape.gradient(scaled, variables)
    if isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer):
        gradients = _agree_on_finite(gradients)
    model.optimizer.apply_gradients(zip(gradients, variables, strict=True))
    return _loss_sum(loss, x)


def _agree_on_finite(gradients: list) -> list:
    """Makes every replica's gradients non-finite if any replica's are.

    Keras 3's LossScaleOptimizer decides on each replica, from that
    replica's own gradients, whether to apply the step or to skip it and
    lower the scale; applying all-reduces, so replicas that disagree leave
    the cluster hanging (it assumes gradients already all-reduced, which
    they are not). One scalar all-reduce makes them agree.
    """
    finite = tf.reduce_all(
        [
            tf.reduce_all(tf.math.is_finite(_values(g)))
            for g in gradients
            if g is not None
        ]
    )
    context = tf.distribute.get_replica_context()
    bad = context.all_reduce("SUM", tf.cast(tf.logical_not(finite), tf.float32))
    factor = tf.where(bad > 0, math.nan, 1.0)
    return [_scaled(g, factor) for g in gradients]


def _values(gradient) -> tf.Tensor:
    """A gradient's values (IndexedSlices for embedding lookups)."""
    if isinstance(gradient, tf.IndexedSlices):
        return gradient.values
    return gradient


def _scaled(gradient, factor: tf.Tensor):
    """`gradient` times `factor` (None stays None)."""
    if gradient is None:
        return None
    if isinstance(gradient, tf.IndexedSlices):
        return tf.IndexedSlices(
            _scaled(gradient.values, factor),
            gradient.indices,
            gradient.dense_shape,
        )
    return gradient * tf.cast(factor, gradient.dtype)


def _replica_eval_step(model: keras.Model, data) -> tuple[tf.Tensor, ...]:
    """One replica's validation loss, as Keras's `test_step`; it updates
    the compiled metrics too (their variables sum over replicas)."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    y_pred = model(x, training=False)
    loss = model.compute_loss(
        x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False
    )
    model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
    return _loss_sum(loss, x)


def _loss_sum(loss: tf.Tensor, x) -> tuple[tf.Tensor, tf.Tensor]:
    """The replica's loss, unscaled and weighted by its batch size."""
    size = _batch_size(x)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return tf.cast(loss, tf.float32) * replicas * size, size


def make_step(
    replica_fn: Callable, model: keras.Model, strategy: tf.distribute.Strategy
) -> StepFn:
    """A compiled step that runs `replica_fn` on every replica.

    Returns:
        A function of a distributed batch that returns the summed
        `(loss * batch size, batch size)` of all replicas.
    """

    @tf.function(reduce_retracing=True)
    def step(batch):
        totals = strategy.run(replica_fn, args=(model, batch))
        return tuple(strategy.reduce("SUM", t, axis=None) for t in totals)

    return step


def _mean(totals: list[tuple[tf.Tensor, tf.Tensor]]) -> float:
    """The batch-size-weighted mean loss of `(loss sum, size)` pairs."""
    loss = sum(float(t[0]) for t in totals)
    size = sum(float(t[1]) for t in totals)
    return loss / size if size else math.nan


def train_epoch(step: StepFn, batches, steps: int) -> float:
    """Runs `steps` training steps and returns their mean loss.

    Raises:
        ValueError: the training data ran out (it must repeat).
    """
    totals = []
    for done in range(steps):
        try:
            batch = next(batches)
        except StopIteration as e:
            raise ValueError(
                f"The training data ran out after {done} steps of an epoch; "
                "it must repeat."
            ) from e
        totals.append(step(batch))
    return _mean(totals)


def evaluate(
    model: keras.Model, step: StepFn, dataset: tf.distribute.DistributedDataset
) -> dict[str, float]:
    """The eval logs of one pass of a finite distributed dataset, as
    `model.fit` names them: `val_loss`, the batch-size-weighted mean loss,
    and `val_<metric>` for each compiled metric over the whole pass."""
    model.reset_metrics()
    logs = {"val_loss": _mean([step(batch) for batch in dataset])}
    for name, value in model.get_metrics_result().items():
        if name != "loss":
            logs[f"val_{name}"] = float(value)
    return logs


class EpochCheckpoint:
    """Model, optimizer and finished-epoch count, saved after each epoch.

    Under MultiWorkerMirroredStrategy every worker must save, since saving
    may run collective ops; only the chief writes to `directory`, the others
    to a local temporary directory that is removed after each save (TF's
    multi-worker checkpoint pattern). Every worker restores from
    `directory`. A checkpoint becomes the latest only once it is complete, so
    a kill mid-save leaves the previous one.
    """

    def __init__(self, model: keras.Model, directory: str, chief: bool):
        """
        Args:
            model: a compiled model whose optimizer is built.
            directory: the chief's checkpoint directory.
            chief: whether this process is the chief.
        """
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._checkpoint = tf.train.Checkpoint(
            model=model, optimizer=model.optimizer, epoch=self.epoch
        )
        self._directory = directory
        self._chief = chief
        write_dir = (
            directory if chief else tempfile.mkdtemp(prefix="textmill-ckpt-")
        )
        self._manager = tf.train.CheckpointManager(
            self._checkpoint, write_dir, max_to_keep=1
        )

    def restore(self) -> int:
        """Restores the latest checkpoint, if any.

        Returns:
            The number of finished epochs (0 without a checkpoint).
        """
        latest = tf.train.latest_checkpoint(self._directory)
        if latest:
            self._checkpoint.restore(latest).assert_existing_objects_matched()
            logging.info("Restored %s", latest)
        return int(self.epoch.numpy())

    def save(self, epochs_done: int) -> None:
        """Saves the state after `epochs_done` finished epochs."""
        self.epoch.assign(epochs_done)
        self._manager.save(checkpoint_number=epochs_done)
        if not self._chief:
            self.remove_worker_copy()

    def remove_worker_copy(self) -> None:
        """Deletes a non-chief worker's throwaway checkpoint."""
        if not self._chief and tf.io.gfile.exists(self._manager.directory):
            tf.io.gfile.rmtree(self._manager.directory)


def append_history(path: str, epoch: int, logs: dict[str, float]) -> None:
    """Appends a row as Keras's CSVLogger does (header on a new file).

    The file is rewritten whole and renamed into place, as GCS cannot
    append.

    Args:
        path: the history CSV.
        epoch: the 0-based epoch index.
        logs: the epoch's `loss`, `val_loss` and `val_<metric>` values,
            the same keys every epoch (columns in sorted order, as
            CSVLogger's).
    """
    text = ""
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            text = f.read()
    row = io.StringIO()
    writer = csv.writer(row, lineterminator="\n")
    if not text:
        writer.writerow(["epoch", *sorted(logs)])
    writer.writerow([epoch, *(logs[key] for key in sorted(logs))])
    partial = path + ".partial"
    with tf.io.gfile.GFile(partial, "w") as f:
        f.write(text + row.getvalue())
    tf.io.gfile.rename(partial, path, overwrite=True)


class SummaryLogger:
    """Epoch scalars under the names Keras's TensorBoard callback uses:
    `epoch_loss` and `epoch_learning_rate` in `train/`, `epoch_loss` and
    `epoch_<metric>` in `validation/`."""

    def __init__(self, log_dir: str):
        self._train = tf.summary.create_file_writer(f"{log_dir}/train")
        self._validation = tf.summary.create_file_writer(
            f"{log_dir}/validation"
        )

    def write(self, epoch: int, logs: dict[str, float], lr: float) -> None:
        with self._train.as_default():
            tf.summary.scalar("epoch_loss", logs["loss"], step=epoch)
            tf.summary.scalar("epoch_learning_rate", lr, step=epoch)
        with self._validation.as_default():
            for key, value in logs.items():
                if key.startswith("val_"):
                    tf.summary.scalar(f"epoch_{key[4:]}", value, step=epoch)
        self._train.flush()
        self._validation.flush()


def _build_optimizer(model: keras.Model, strategy) -> None:
    """Creates the optimizer's variables, so a checkpoint can fill them."""
    if not model.built:
        raise ValueError("The model must be built before training.")
    if not model.optimizer.built:
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)


def fit_distributed(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    eval_ds: tf.data.Dataset,
    *,
    strategy: tf.distribute.Strategy,
    epochs: int,
    steps_per_epoch: int,
    checkpoint_dir: str,
    history_path: str,
    log_dir: str,
    chief: bool,
) -> list[dict[str, float]]:
    """Trains a compiled model for `epochs` epochs, resuming after a kill.

    Every worker of the cluster calls this with the same arguments. Works
    with any strategy (the default one included); `fit_resumable` uses it
    for MultiWorkerMirroredStrategy only. The training data iterator starts
    afresh on a resumed run, as with Keras's BackupAndRestore.

    Args:
        model: built and compiled (loss and optimizer) in `strategy`'s scope.
        train_ds: repeating global batches of `(x, y[, sample_weight])`.
        eval_ds: finite global batches, evaluated after every epoch.
        strategy: the distribution strategy.
        epochs: epochs in all, those of earlier runs included.
        steps_per_epoch: optimizer steps per epoch.
        checkpoint_dir: where the chief keeps the checkpoint.
        history_path: the chief's CSV of `epoch`, `loss`, `val_loss` and
            `val_<metric>` rows.
        log_dir: the chief's TensorBoard directory.
        chief: whether this process writes checkpoints and logs.

    Returns:
        The logs (`loss`, `val_loss`, `val_<metric>`) of the epochs this
        call trained.
    """
    _build_optimizer(model, strategy)
    checkpoint = EpochCheckpoint(model, checkpoint_dir, chief)
    with strategy.scope():
        first_epoch = checkpoint.restore()
    if first_epoch:
        logging.info("Resuming after epoch %d of %d", first_epoch, epochs)
    train_step = make_step(_replica_train_step, model, strategy)
    eval_step = make_step(_replica_eval_step, model, strategy)
    batches = iter(distribute(train_ds, strategy))
    eval_batches = distribute(eval_ds, strategy)
    summaries = SummaryLogger(log_dir) if chief else None
    history = []
    try:
        for epoch in range(first_epoch, epochs):
            logs = {"loss": train_epoch(train_step, batches, steps_per_epoch)}
            logs.update(evaluate(model, eval_step, eval_batches))
            logging.info("Epoch %d/%d: %s", epoch + 1, epochs, logs)
            if chief:
                # Before the checkpoint: a kill in between repeats the epoch,
                # and the history reader keeps an epoch's last row.
                append_history(history_path, epoch, logs)
                lr = keras.ops.convert_to_numpy(model.optimizer.learning_rate)
                summaries.write(epoch, logs, float(lr))
            checkpoint.save(epoch + 1)
            history.append(logs)
    finally:
        checkpoint.remove_worker_copy()
    return history
