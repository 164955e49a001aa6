import numpy as np
import tensorflow as tf

from textmill.families.bert_nsp.family import balanced_pairs


def _pairs(labels) -> tf.data.Dataset:
    """Unbatched `(inputs, is_next)` whose token_ids hold their index."""
    return tf.data.Dataset.from_tensor_slices(
        ({"token_ids": np.arange(len(labels))[:, None]}, np.array(labels))
    )


def _units(labels, count) -> list[tuple[int, int]]:
    return [
        (int(inputs["token_ids"][0]), int(label))
        for inputs, label in balanced_pairs(
            _pairs(labels), count
        ).as_numpy_iterator()
    ]


def test_balanced_pairs_alternate_the_classes_in_split_order():
    # As SentencePairGen writes a split: its true pairs, then random ones.
    labels = [1] * 6 + [0] * 4
    assert _units(labels, 5) == [(0, 1), (6, 0), (1, 1), (7, 0), (2, 1)]
    units = _units(labels, 0)
    assert [label for _, label in units] == [1, 0] * 4
    assert units == _units(labels, 0)  # deterministic


def test_balanced_pairs_of_one_class_only_are_empty():
    assert _units([1, 1, 1], 2) == []
