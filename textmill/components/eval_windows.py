"""Transform's output splits, read for what scores models outside the
Trainer (validator, baselines, TFLite parity): records, parsed features,
eval documents and the causal LM's packed eval windows.

Every family's eval units start from `eval_records`, which reads the eval
split in `ordered_records`' order, the order the Trainer's val_nll reads
it in too, so both score the same units, and two runs on the same data
score the same units however Transform sharded the split. Baselines count
the train split with `split_records`, in file order."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from tfx.types import artifact_utils

from textmill.features import INPUT_IDS_FEATURE, TOKEN_IDS_FEATURE
from textmill.trainer.data import (
    documents_as_ragged,
    ordered_records,
    pack_documents,
)


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


def split_records(examples, split: str) -> tf.data.Dataset:
    """The serialized `tf.Example`s of one split of an Examples artifact,
    in file order (for counts, where order does not matter).

    Raises:
        ValueError: the artifact has no such split, or it is empty.
    """
    return tf.data.TFRecordDataset(
        split_files(examples, split), compression_type="GZIP"
    )


def eval_records(examples) -> tf.data.Dataset:
    """The serialized `tf.Example`s of the eval split, in the eval units'
    order (`ordered_records`).

    Raises:
        ValueError: the artifact has no eval split, or it is empty.
    """
    return ordered_records(split_files(examples, "eval"))


def parsed_batches(
    records: tf.data.Dataset, spec: dict, batch_size: int = 64
) -> tf.data.Dataset:
    """Batches of records parsed with `spec` (use `tf.io.RaggedFeature`
    for variable-length ones, so the batches unbatch into rows)."""
    return records.batch(batch_size).map(
        lambda batch: tf.io.parse_example(batch, spec)
    )


def eval_rows(examples, spec: dict, count: int = 0) -> list[dict]:
    """The first `count` (0 = all) eval examples parsed with `spec`, as
    dicts of numpy values, in the eval units' order.

    Raises:
        ValueError: the eval split holds no example.
    """
    rows = list(
        parsed_batches(eval_records(examples), spec)
        .unbatch()
        .take(count or -1)
        .as_numpy_iterator()
    )
    if not rows:
        raise ValueError(f"The eval split of {examples.uri} has no examples.")
    return rows


def eval_documents(examples) -> tf.data.Dataset:
    """Batches of the eval split's token ids, RaggedTensors [batch, None]
    (int32), in the eval units' order."""
    spec = {INPUT_IDS_FEATURE: tf.io.VarLenFeature(tf.int64)}
    return parsed_batches(eval_records(examples), spec).map(documents_as_ragged)


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
    windows = pack_documents(
        eval_documents(examples), sequence_length, bos_id
    ).map(lambda x, y: tf.concat([x[TOKEN_IDS_FEATURE][:1], y], axis=0))
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
