import numpy as np
import tensorflow as tf

from textmill.trainer.data import pack_documents


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
