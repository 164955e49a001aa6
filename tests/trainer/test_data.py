import os

import numpy as np
import tensorflow as tf
from tensorflow_transform.tf_metadata import schema_utils

from textmill.trainer.data import (
    ordered_records,
    pack_documents,
    pad_prompted_examples,
    transformed_batches,
)


def test_packing_prefixes_bos_concatenates_and_keeps_long_documents():
    docs = tf.data.Dataset.from_tensors(
        tf.ragged.constant([[1, 2, 3], [4, 5, 6, 7, 8, 9, 10]], tf.int32)
    )
    windows = list(pack_documents(docs, sequence_length=4, bos_id=0))
    # stream: 0 1 2 3 0 4 5 6 7 8 9 10 -> windows of 5 tokens, remainder
    # dropped.
    assert len(windows) == 2
    inputs, labels = windows[0]
    np.testing.assert_array_equal(inputs["token_ids"], [0, 1, 2, 3])
    np.testing.assert_array_equal(labels, [1, 2, 3, 0])
    assert inputs["padding_mask"].numpy().all()
    inputs, labels = windows[1]
    np.testing.assert_array_equal(inputs["token_ids"], [4, 5, 6, 7])
    np.testing.assert_array_equal(labels, [5, 6, 7, 8])


def test_prompted_examples_are_padded_rows_with_loss_on_the_target():
    # Example 1: prompt 11 12 | target 13 99; example 2: prompt 21 | 22 99.
    features = {
        "input_ids": tf.ragged.constant(
            [[11, 12, 13, 99], [21, 22, 99]], tf.int64
        ).to_sparse(),
        "loss_mask": tf.ragged.constant(
            [[0, 0, 1, 1], [0, 1, 1]], tf.int64
        ).to_sparse(),
    }
    inputs, labels, weights = pad_prompted_examples(
        features, sequence_length=5, bos_id=0
    )
    np.testing.assert_array_equal(
        inputs["token_ids"], [[0, 11, 12, 13, 99], [0, 21, 22, 99, 0]]
    )
    np.testing.assert_array_equal(
        inputs["padding_mask"],
        [[True] * 5, [True, True, True, True, False]],
    )
    np.testing.assert_array_equal(
        labels, [[11, 12, 13, 99, 0], [21, 22, 99, 0, 0]]
    )
    # Only the target tokens (and their end-of-text) carry weight.
    np.testing.assert_array_equal(weights, [[0, 0, 1, 1, 0], [0, 1, 1, 0, 0]])


def _write_shards(directory: str, shards: list[list[int]]) -> str:
    """GZIP shards of examples whose `input_ids` are [n, n + 1]; returns
    the split's file pattern."""
    os.makedirs(directory)
    for index, values in enumerate(shards):
        path = os.path.join(directory, f"part-{index:05d}.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for n in values:
                example = tf.train.Example()
                example.features.feature["input_ids"].int64_list.value[:] = [
                    n,
                    n + 1,
                ]
                writer.write(example.SerializeToString())
    return os.path.join(directory, "*")


def test_eval_order_depends_on_the_records_not_on_the_shards(tmp_path):
    one_shard = _write_shards(str(tmp_path / "a"), [list(range(20))])
    three_shards = _write_shards(
        str(tmp_path / "b"),
        [[19, 3, 7], list(range(8, 19)), [6, 0, 5, 4, 2, 1]],
    )
    first = list(ordered_records([one_shard]).as_numpy_iterator())
    second = list(ordered_records([three_shards]).as_numpy_iterator())
    assert first == second and len(first) == 20
    # Neither file order nor value order: an order of the content.
    values = [tf.train.Example.FromString(r) for r in first]
    ids = [v.features.feature["input_ids"].int64_list.value[0] for v in values]
    assert ids != sorted(ids)

    # The Trainer's eval batches read the split in that order.
    schema = schema_utils.schema_from_feature_spec(
        {"input_ids": tf.io.VarLenFeature(tf.int64)}
    )
    batches = transformed_batches(
        [three_shards], None, schema, repeat=False, seed=0, batch_size=8
    )
    read = [
        row[0]
        for batch in batches
        for row in tf.RaggedTensor.from_sparse(batch["input_ids"]).numpy()
    ]
    assert read == ids
