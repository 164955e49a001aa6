"""Draws training and validation loss curves to a PNG."""

from __future__ import annotations

import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import tensorflow as tf  # noqa: E402

from textmill.trainer.mean_nll import VAL_NLL  # noqa: E402


def read_history(history_csv: str) -> dict[str, list[float]]:
    """Columns of a Keras CSVLogger file; a resumed run's rows repeat an
    epoch, the last row of an epoch wins."""
    by_epoch: dict[int, dict[str, str]] = {}
    with tf.io.gfile.GFile(history_csv) as f:
        for row in csv.DictReader(f):
            if row.get("epoch", "").isdigit():
                by_epoch[int(row["epoch"])] = row
    epochs = sorted(by_epoch)
    columns = {key for row in by_epoch.values() for key in row} - {"epoch"}
    return {
        "epoch": [e + 1 for e in epochs],
        **{
            key: [float(by_epoch[e].get(key) or "nan") for e in epochs]
            for key in sorted(columns)
        },
    }


def plot_history(
    history_csv: str, png_path: str, steps_per_epoch: int = 1
) -> None:
    """Plots the training `loss` and the eval `val_nll` (`MeanNLL`, the
    log of the validator's perplexity) against optimizer steps from a
    CSVLogger file.

    Args:
        history_csv: the CSVLogger file (one row per epoch).
        png_path: where the PNG goes.
        steps_per_epoch: optimizer steps per epoch (checkpoint interval).
    """
    history = read_history(history_csv)
    steps = [epoch * steps_per_epoch for epoch in history["epoch"]]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for key, label in (
        ("loss", "train (mean over the interval)"),
        (VAL_NLL, "eval NLL (the validator's units)"),
    ):
        if key in history:
            ax.plot(steps, history[key], marker="o", label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("textmill training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with tf.io.gfile.GFile(png_path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
