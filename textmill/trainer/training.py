"""What every family's training shares: the `train` template that owns a
Trainer run's flow, strategy and precision set-up, the learning-rate
schedule, resumable fitting with logs and loss curves, and the chief
check."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable

import keras
import tensorflow as tf
import tensorflow_transform as tft

from textmill.config import TrainConfig
from textmill.families.base import Family, TrainingRun
from textmill.serving.model_metadata import write_model_metadata
from textmill.trainer import distributed_loop
from textmill.trainer.backup import AtomicBackupAndRestore
from textmill.trainer.distribution import choose_strategy, precision_policy
from textmill.trainer.loss_plot import plot_history
from textmill.trainer.mean_nll import MeanNLL
from textmill.trainer.progress import TrainingProgress
from textmill.trainer.throughput import write_throughput

HISTORY_FILE = "history.csv"
LOSS_PLOT_FILE = "loss_curves.png"


def train(family: Family, fn_args) -> None:
    """Trains and exports `family`'s model: the one flow every family
    fills in (see textmill.families.base).

    Devices and seeds are set up first, then the family's plan, its train
    and eval datasets and model; `compile_and_fit` trains (resuming from
    checkpoints), and the chief exports and writes the model metadata.

    Args:
        family: the family named in the Trainer's custom_config.
        fn_args: the TFX Trainer's FnArgs.
    """
    hparams = train_config(fn_args)
    run = TrainingRun(
        fn_args, hparams, tft.TFTransformOutput(fn_args.transform_graph_path)
    )
    strategy = set_up_devices(hparams)
    plan = family.plan(run)
    started = time.monotonic()
    model = compile_and_fit(
        lambda: family.build_model(run, plan),
        family.dataset(run, plan, fn_args.train_files, repeat=True),
        family.dataset(run, plan, fn_args.eval_files, repeat=False),
        hparams,
        fn_args,
        strategy,
    )
    if model is None:
        return
    write_throughput(fn_args.model_run_dir, hparams, time.monotonic() - started)
    metadata = family.export(run, plan, model)
    write_model_metadata(
        run.serving_model_dir,
        {
            "family": family.spec.name,
            "preset": hparams.preset,
            "train_steps": hparams.train_steps,
            **metadata,
        },
    )


def train_config(fn_args) -> TrainConfig:
    """The TrainConfig of a Trainer run; TrainArgs/EvalArgs win over the
    config, as on Vertex they are runtime parameters of the pipeline."""
    values = fn_args.custom_config["train"]
    return dataclasses.replace(
        TrainConfig(**values),
        train_steps=fn_args.train_steps or values["train_steps"],
        eval_steps=fn_args.eval_steps or values["eval_steps"],
    )


def set_up_devices(train: TrainConfig) -> tf.distribute.Strategy:
    """Chooses the strategy, sets the Keras precision policy and seeds."""
    strategy = choose_strategy()
    policy = precision_policy(train.mixed_precision, strategy)
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(train.seed)
    logging.info(
        "Training preset %s with %s, %d replica(s), policy %s",
        train.preset,
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        policy,
    )
    return strategy


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this process is a non-chief worker of a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return (
        not has_chief
        and resolver.task_type == "worker"
        and resolver.task_id == 0
    )


def learning_rate_schedule(train: TrainConfig):
    """Linear warm-up to the peak rate, then cosine decay to 10 % of it."""
    warmup = min(train.warmup_steps, max(train.train_steps - 1, 0))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else train.peak_learning_rate,
        decay_steps=max(train.train_steps - warmup, 1),
        alpha=0.1,
        warmup_target=train.peak_learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def optimizer(train: TrainConfig) -> keras.optimizers.Optimizer:
    return keras.optimizers.AdamW(
        learning_rate_schedule(train),
        weight_decay=train.weight_decay,
        global_clipnorm=1.0,
    )


def compile_and_fit(
    build_model: Callable[[], keras.Model],
    train_ds: tf.data.Dataset,
    eval_ds: tf.data.Dataset,
    train: TrainConfig,
    fn_args,
    strategy: tf.distribute.Strategy,
) -> keras.Model | None:
    """Builds a model that outputs logits in the strategy's scope, compiles
    it (AdamW, sparse cross-entropy, and `MeanNLL` and accuracy weighted by
    any sample weights) and fits it with `fit_resumable`.

    Args:
        build_model: makes the untrained (or preset-initialised) model.
        train_ds: repeating training batches.
        eval_ds: the eval split; after each epoch its first
            `custom_config["eval_units"]` rows (windows, pairs, examples:
            the units ModelValidator scores) are evaluated, or its first
            `train.eval_steps` batches when that is 0 or absent.
        train, fn_args, strategy: as `fit_resumable`.

    Returns:
        The trained model on the chief (which exports it); None on the
        other workers.
    """
    with strategy.scope():
        model = build_model()
        model.compile(
            optimizer=optimizer(train),
            # Each batch's loss averages its weighted labels (summary
            # tokens, masked positions) over their weights.
            loss=keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, reduction="mean_with_sample_weight"
            ),
            # val_nll, unlike val_loss, sums over the whole eval set and
            # divides once: the log of the validator's perplexity.
            weighted_metrics=[MeanNLL(), "sparse_categorical_accuracy"],
        )
    eval_units = fn_args.custom_config.get("eval_units") or 0
    if eval_units:
        eval_ds = eval_ds.unbatch().take(eval_units).batch(train.batch_size)
    else:
        eval_ds = eval_ds.take(train.eval_steps)
    chief = fit_resumable(
        model,
        train_ds,
        eval_ds,
        train,
        fn_args,
        strategy,
    )
    return model if chief else None


def checkpoint_dir(checkpoint_root: str, fn_args, train: TrainConfig) -> str:
    """A directory that is the same when the same training is run again.

    It is keyed by the training inputs and hyper-parameters, so a Trainer
    re-run after a kill finds its checkpoints, and a different run does not.
    """
    key = json.dumps(
        {
            "train_files": sorted(fn_args.train_files),
            "transform_graph": fn_args.transform_graph_path,
            "family": fn_args.custom_config.get("family"),
            "train": dataclasses.asdict(train),
        },
        sort_keys=True,
    )
    return os.path.join(
        checkpoint_root, hashlib.sha256(key.encode()).hexdigest()[:16]
    )


def fit_resumable(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    eval_ds: tf.data.Dataset,
    train: TrainConfig,
    fn_args,
    strategy: tf.distribute.Strategy,
) -> bool:
    """Fits with checkpoints that survive a kill, TensorBoard logs and a
    loss-curve PNG.

    Training runs as epochs of `checkpoint_every` steps; after each, the
    model and optimizer are backed up, and a restarted run continues from
    the last finished epoch. Under MultiWorkerMirroredStrategy, where Keras
    3's `model.fit` fails (keras-team/keras#20585), a custom loop
    (`distributed_loop.fit_distributed`) trains instead; every other
    strategy uses `model.fit`.

    Returns:
        True on the chief (the process that must export).
    """
    ckpt_dir = checkpoint_dir(
        fn_args.custom_config["checkpoint_root"], fn_args, train
    )
    tf.io.gfile.makedirs(ckpt_dir)
    history_path = os.path.join(ckpt_dir, HISTORY_FILE)
    steps_per_epoch = min(train.checkpoint_every, train.train_steps)
    epochs = math.ceil(train.train_steps / steps_per_epoch)
    logging.info(
        "Checkpoints in %s; %d epochs of %d steps",
        ckpt_dir,
        epochs,
        steps_per_epoch,
    )
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        distributed_loop.fit_distributed(
            model,
            train_ds,
            eval_ds,
            strategy=strategy,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            checkpoint_dir=os.path.join(
                ckpt_dir, distributed_loop.CHECKPOINT_SUBDIR
            ),
            history_path=history_path,
            log_dir=fn_args.model_run_dir,
            chief=is_chief(strategy),
        )
    else:
        model.fit(
            train_ds,
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
            validation_data=eval_ds,
            callbacks=[
                AtomicBackupAndRestore(os.path.join(ckpt_dir, "backup")),
                keras.callbacks.CSVLogger(history_path, append=True),
                keras.callbacks.TensorBoard(fn_args.model_run_dir),
                TrainingProgress(epochs * steps_per_epoch, steps_per_epoch),
            ],
            verbose=2,
        )
    if not is_chief(strategy):
        return False
    plot_history(
        history_path,
        os.path.join(fn_args.model_run_dir, LOSS_PLOT_FILE),
        steps_per_epoch,
    )
    tf.io.gfile.copy(
        history_path,
        os.path.join(fn_args.model_run_dir, HISTORY_FILE),
        overwrite=True,
    )
    return True
