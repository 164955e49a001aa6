import numpy as np
import tensorflow as tf

from textmill.trainer.data import pack_documents, pad_prompted_examples


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
