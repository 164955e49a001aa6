"""The TFX Trainer entry point: `run_fn(fn_args)`.

Builds the family's model under the strategy the hardware calls for,
streams packed windows from Transform's output, trains with checkpoints
that resume after the process is killed, logs to TensorBoard, draws the
loss curves, and exports the serving SavedModel.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os

import keras
import tensorflow as tf
import tensorflow_transform as tft

from textmill.pipelines.config import TrainConfig
from textmill.serving.causal_lm_export import (
    export_causal_lm,
    network_model_path,
)
from textmill.serving.model_metadata import write_model_metadata
from textmill.tokenization.bpe_files import BpeFiles
from textmill.trainer.data import causal_lm_dataset
from textmill.trainer.distribution import choose_strategy, precision_policy
from textmill.trainer.loss_plot import plot_history
from textmill.trainer.models.gpt2 import build_gpt2_causal_lm
from textmill.transform.causal_lm import MERGES_ASSET, VOCAB_ASSET

EOS_TOKEN = "<|endoftext|>"
HISTORY_FILE = "history.csv"
LOSS_PLOT_FILE = "loss_curves.png"


def checkpoint_dir(checkpoint_root: str, fn_args, train: TrainConfig) -> str:
    """A directory that is the same when the same training is run again.

    It is keyed by the training inputs and hyper-parameters, so a Trainer
    re-run after a kill finds its checkpoints, and a different run does not.
    """
    key = json.dumps(
        {
            "train_files": sorted(fn_args.train_files),
            "transform_graph": fn_args.transform_graph_path,
            "train": train.__dict__,
        },
        sort_keys=True,
    )
    return os.path.join(
        checkpoint_root, hashlib.sha256(key.encode()).hexdigest()[:16]
    )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this process is a non-chief worker of a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief":
        return True
    return not has_chief and resolver.task_type == "worker" and (
        resolver.task_id == 0
    )


def learning_rate_schedule(train: TrainConfig):
    """Linear warm-up to the peak rate, then cosine decay to 10 % of it."""
    warmup = min(train.warmup_steps, max(train.train_steps - 1, 0))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else train.learning_rate,
        decay_steps=max(train.train_steps - warmup, 1),
        alpha=0.1,
        warmup_target=train.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def run_fn(fn_args) -> None:
    """Trains and exports a causal LM (TFX Trainer `run_fn`)."""
    config = fn_args.custom_config
    # TrainArgs/EvalArgs win over the config: on Vertex they are runtime
    # parameters of the pipeline.
    train = dataclasses.replace(
        TrainConfig(**config["train"]),
        train_steps=fn_args.train_steps or config["train"]["train_steps"],
        eval_steps=fn_args.eval_steps or config["train"]["eval_steps"],
    )
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    vocab = BpeFiles(
        tft_output.vocabulary_file_by_name(VOCAB_ASSET),
        tft_output.vocabulary_file_by_name(MERGES_ASSET),
    )
    vocab_size = vocab.vocab_size()
    eos_id = vocab.token_id(EOS_TOKEN)

    strategy = choose_strategy()
    policy = precision_policy(train.mixed_precision, strategy)
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(train.seed)
    logging.info(
        "Training %s (vocabulary %d) with %s, %d replica(s), policy %s",
        train.preset,
        vocab_size,
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        policy,
    )

    schema = tft_output.transformed_metadata.schema
    common = dict(
        data_accessor=fn_args.data_accessor,
        schema=schema,
        batch_size=train.batch_size,
        sequence_length=train.sequence_length,
        bos_id=eos_id,
        seed=train.seed,
    )
    train_ds = causal_lm_dataset(fn_args.train_files, repeat=True, **common)
    eval_ds = causal_lm_dataset(
        fn_args.eval_files, repeat=False, **common
    ).take(train.eval_steps)

    with strategy.scope():
        model = build_gpt2_causal_lm(
            train.preset, vocab_size, init_from=train.init_from
        )
        model.compile(
            optimizer=keras.optimizers.AdamW(
                learning_rate_schedule(train),
                weight_decay=train.weight_decay,
                global_clipnorm=1.0,
            ),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy()],
        )

    ckpt_dir = checkpoint_dir(config["checkpoint_root"], fn_args, train)
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
    model.fit(
        train_ds,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        validation_data=eval_ds,
        callbacks=[
            # Resumes at the last finished epoch after a kill.
            keras.callbacks.BackupAndRestore(
                os.path.join(ckpt_dir, "backup"), delete_checkpoint=False
            ),
            keras.callbacks.CSVLogger(history_path, append=True),
            keras.callbacks.TensorBoard(fn_args.model_run_dir),
        ],
        verbose=2,
    )
    if not is_chief(strategy):
        return  # one writer: the chief exports, the other workers stop here
    plot_history(
        history_path, os.path.join(fn_args.model_run_dir, LOSS_PLOT_FILE)
    )
    tf.io.gfile.copy(
        history_path,
        os.path.join(fn_args.model_run_dir, HISTORY_FILE),
        overwrite=True,
    )

    sequence_length = min(
        train.sequence_length, model.backbone.max_sequence_length
    )
    export_causal_lm(
        model,
        tft_output,
        fn_args.serving_model_dir,
        network_model_path(os.path.dirname(fn_args.serving_model_dir)),
        sequence_length,
        eos_id,
    )
    write_model_metadata(
        fn_args.serving_model_dir,
        {
            "family": config["family"],
            "preset": train.preset,
            "vocabulary_size": vocab_size,
            "eos_id": eos_id,
            "sequence_length": sequence_length,
            "train_steps": train.train_steps,
            "precision_policy": policy,
        },
    )
