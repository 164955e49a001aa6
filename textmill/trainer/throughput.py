"""The Trainer's training throughput, written beside its history."""

from __future__ import annotations

import json
import os

import tensorflow as tf

THROUGHPUT_FILE = "throughput.json"


def write_throughput(model_run_dir: str, train, seconds: float) -> dict:
    """Writes training tokens/s into the ModelRun directory.

    The time is the wall time of building and fitting the model, per-epoch
    evaluation and checkpoints included; after a resume, that of the
    process that finished the run.

    Args:
        model_run_dir: `fn_args.model_run_dir`.
        train: the run's TrainConfig (steps, batch size, window length,
            and `distill_from`).
        seconds: the wall time.

    Returns:
        What was written: train_seconds, train_tokens,
        train_tokens_per_second, distilled.
    """
    tokens = train.train_steps * train.batch_size * train.sequence_length
    record = {
        "train_seconds": round(seconds, 2),
        "train_tokens": tokens,
        "train_tokens_per_second": round(tokens / max(seconds, 1e-9), 1),
        "distilled": bool(getattr(train, "distill_from", None)),
    }
    with tf.io.gfile.GFile(
        os.path.join(model_run_dir, THROUGHPUT_FILE), "w"
    ) as f:
        json.dump(record, f)
    return record


def read_throughput(model_run_dir: str) -> dict:
    """What `write_throughput` wrote there ({} if nothing)."""
    path = os.path.join(model_run_dir, THROUGHPUT_FILE)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
