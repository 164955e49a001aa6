"""Eval-split token windows read from Transform's output, for components
that score models outside the Trainer (validator, TFLite parity)."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from tfx.types import artifact_utils

from textmill.features import INPUT_IDS_FEATURE, TOKEN_IDS_FEATURE
from textmill.trainer.data import pack_documents


def split_files(examples, split: str) -> list[str]:
    """The record files of one split of an Examples artifact.

    Raises:
        ValueError: the artifact has no such split, or it is empty.
    """
    if split not in artifact_utils.decode_split_names(examples.split_names):
        raise ValueError(
            f"Examples at {examples.uri} have no {split!r} split; it has "
            f"{examples.split_names}."
        )
    uri = artifact_utils.get_split_uri([examples], split)
    files = tf.io.gfile.glob(os.path.join(uri, "*"))
    if not files:
        raise ValueError(f"Split {split!r} at {uri} holds no files.")
    return files


def load_eval_windows(
    examples, sequence_length: int, bos_id: int, max_windows: int
) -> np.ndarray:
    """Packs eval documents into windows the way the Trainer does.

    Args:
        examples: the transformed Examples artifact.
        sequence_length: model input length; windows carry one more token.
        bos_id: end-of-text id prefixed to each document.
        max_windows: upper bound on windows returned (0 = all).

    Returns:
        int32 array [windows, sequence_length + 1].

    Raises:
        ValueError: the eval split is too small for a single window.
    """
    spec = {INPUT_IDS_FEATURE: tf.io.VarLenFeature(tf.int64)}
    documents = (
        tf.data.TFRecordDataset(
            split_files(examples, "eval"), compression_type="GZIP"
        )
        .batch(64)
        .map(lambda x: tf.io.parse_example(x, spec))
        .map(
            lambda f: tf.cast(
                tf.RaggedTensor.from_sparse(f[INPUT_IDS_FEATURE]), tf.int32
            )
        )
    )
    windows = pack_documents(documents, sequence_length, bos_id).map(
        lambda x, y: tf.concat([x[TOKEN_IDS_FEATURE][:1], y], axis=0)
    )
    if max_windows:
        windows = windows.take(max_windows)
    rows = [w.numpy() for w in windows]
    if not rows:
        raise ValueError(
            f"The eval split of {examples.uri} has fewer than "
            f"{sequence_length + 1} tokens: add eval data or raise "
            "ingest.eval_fraction."
        )
    return np.stack(rows)
