"""The examples I/O the Beam executors share."""

import random

import pytest
import tensorflow as tf

from textmill.components.example_io import serialize_example


def test_same_features_give_the_same_bytes_in_any_order():
    # Without deterministic serialization the map's insertion order shows
    # in the bytes; 30 keys in 5 orders make that near certain.
    keys = [f"feature_{i}" for i in range(30)]
    serialized = set()
    for seed in range(5):
        random.Random(seed).shuffle(keys)
        serialized.add(serialize_example({key: key for key in keys}))
    assert len(serialized) == 1


def test_str_is_a_bytes_feature_and_int_an_int64_feature():
    example = tf.train.Example.FromString(
        serialize_example({"text": "Grüße", "is_next": 1})
    )
    feature = example.features.feature
    assert feature["text"].bytes_list.value == ["Grüße".encode()]
    assert feature["is_next"].int64_list.value == [1]


def test_other_values_are_refused_with_the_feature_name():
    with pytest.raises(TypeError, match=r"'score' = 0.5 is a float"):
        serialize_example({"score": 0.5})
