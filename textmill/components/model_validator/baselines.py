"""What trivial baselines learn from the train split: token frequencies
(a smoothed unigram model, the most frequent token) and label frequencies
(the majority class)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from textmill.components.eval_windows import parsed_batches, split_records

# Add-one (Laplace) smoothing: every vocabulary token has a probability.
SMOOTHING = 1.0


def train_records(examples, features: dict) -> tf.data.Dataset:
    """The train split's transformed records, parsed with `features`."""
    return parsed_batches(
        split_records(examples, "train"), features, batch_size=256
    )


def token_counts(
    examples,
    vocab_size: int,
    feature: str,
    mask_feature: str | None = None,
    per_record: tuple[int, ...] = (),
) -> np.ndarray:
    """How often each token id occurs in the train split.

    Args:
        examples: the transformed Examples artifact.
        vocab_size: ids are in [0, vocab_size).
        feature: the VarLen int feature of token ids.
        mask_feature: a VarLen 0/1 feature of the same lengths; only ids
            where it is 1 are counted (e.g. summary tokens).
        per_record: ids added once per record (e.g. the end-of-text id the
            Trainer puts before each document).

    Returns:
        int64 counts [vocab_size].
    """
    names = [feature] + ([mask_feature] if mask_feature else [])
    spec = {name: tf.io.VarLenFeature(tf.int64) for name in names}

    def counted(batch: dict) -> tuple[tf.Tensor, tf.Tensor]:
        ids = batch[feature].values
        if mask_feature:
            ids = tf.boolean_mask(ids, batch[mask_feature].values == 1)
        return ids, batch[feature].dense_shape[0]

    counts = np.zeros(vocab_size, np.int64)
    for ids, records in train_records(examples, spec).map(counted):
        counts += np.bincount(ids.numpy(), minlength=vocab_size)[:vocab_size]
        for token in per_record:
            counts[token] += int(records)
    return counts


def unigram_log_probs(counts: np.ndarray) -> np.ndarray:
    """Log-probabilities of the add-one smoothed unigram model."""
    smoothed = counts.astype(np.float64) + SMOOTHING
    return np.log(smoothed / smoothed.sum())


def majority_label(examples, feature: str) -> int:
    """The most frequent value of an int label in the train split."""
    spec = {feature: tf.io.VarLenFeature(tf.int64)}
    labels = np.concatenate(
        [
            values.numpy()
            for values in train_records(examples, spec).map(
                lambda batch: batch[feature].values
            )
        ]
    )
    values, counts = np.unique(labels, return_counts=True)
    return int(values[np.argmax(counts)])
