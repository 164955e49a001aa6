"""The exporter base on a real Transform graph and a small Keras model.

A word-level Transform (a learned vocabulary) and a per-token classifier
stand in for a family: the serving SavedModel must tokenize raw strings
through the Transform graph exactly as the Transform did, and the bare
network must hold the model alone.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import (
    dataset_metadata,
    metadata_io,
    schema_utils,
)

from textmill.features import INPUT_IDS_FEATURE, TEXT_FEATURE, TOKEN_IDS_FEATURE
from textmill.serving.exporter import Exporter
from textmill.serving.signatures import LOGITS_FROM_IDS, SERVING_DEFAULT

LENGTH = 6
CLASSES = 3
TEXTS = ["the cat sat", "the dog ran far", "a cat ran", "the cat"]


def preprocessing_fn(inputs):
    words = tf.strings.split(inputs[TEXT_FEATURE]).to_sparse()
    return {
        INPUT_IDS_FEATURE: tft.compute_and_apply_vocabulary(
            words, num_oov_buckets=1
        )
    }


class WordServing(Exporter):
    """Per-token logits of raw text, padded to `LENGTH` tokens."""

    def classify(self, text):
        ids = self.token_ids(text).to_tensor(0, shape=[None, LENGTH])
        return self.logits_from_ids(ids)

    def add_serving_endpoints(self, archive):
        archive.add_endpoint(
            SERVING_DEFAULT,
            self.classify,
            [tf.TensorSpec([None], tf.string, name=TEXT_FEATURE)],
        )

    def token_ids_specs(self):
        return [tf.TensorSpec([1, LENGTH], tf.int32, name=TOKEN_IDS_FEATURE)]

    def logits_from_ids(self, token_ids):
        return {"logits": tf.cast(self.model(token_ids), tf.float32)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`(serving_dir, network_dir, transformed rows)`."""
    root = tmp_path_factory.mktemp("exporter")
    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(
            {TEXT_FEATURE: tf.io.FixedLenFeature([], tf.string)}
        )
    )
    with tft_beam.Context(temp_dir=str(root / "tft_tmp")):
        (transformed, _), transform_fn = (
            [{TEXT_FEATURE: text} for text in TEXTS],
            metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(root / "transform"))
    # The raw schema, which TFX's Transform writes beside the graph.
    metadata_io.write_metadata(metadata, str(root / "transform" / "metadata"))
    tft_output = tft.TFTransformOutput(str(root / "transform"))
    keras.utils.set_random_seed(0)
    # 7 words and 1 out-of-vocabulary bucket: ids in [0, 8).
    model = keras.Sequential(
        [keras.layers.Embedding(8, 4), keras.layers.Dense(CLASSES)]
    )
    model(np.zeros([1, LENGTH], "int32"))
    serving_dir, network_dir = str(root / "serving"), str(root / "network")
    WordServing(model, tft_output).export(serving_dir, network_dir)
    return serving_dir, network_dir, transformed


def test_serving_has_its_signatures_and_logits_from_ids(exported):
    serving_dir, network_dir, _ = exported
    serving = tf.saved_model.load(serving_dir).signatures
    network = tf.saved_model.load(network_dir).signatures
    assert set(serving) == {SERVING_DEFAULT, LOGITS_FROM_IDS}
    # Keras also serves a SavedModel's first endpoint as serving_default.
    assert set(network) == {LOGITS_FROM_IDS, SERVING_DEFAULT}


def test_raw_strings_are_tokenized_as_transform_did(exported):
    serving_dir, network_dir, transformed = exported
    serve = tf.saved_model.load(serving_dir).signatures[SERVING_DEFAULT]
    bare = tf.saved_model.load(network_dir).signatures[LOGITS_FROM_IDS]
    got = serve(**{TEXT_FEATURE: tf.constant(TEXTS)})["logits"].numpy()
    assert got.shape == (len(TEXTS), LENGTH, CLASSES)
    for row, features in enumerate(transformed):
        ids = np.zeros([1, LENGTH], "int32")
        words = features[INPUT_IDS_FEATURE]
        ids[0, : len(words)] = words
        expected = bare(**{TOKEN_IDS_FEATURE: tf.constant(ids)})["logits"]
        np.testing.assert_allclose(got[row], expected.numpy()[0], atol=1e-6)


def test_only_the_serving_model_carries_the_vocabulary(exported):
    serving_dir, network_dir, _ = exported
    assert os.listdir(os.path.join(serving_dir, "assets"))
    network_assets = os.path.join(network_dir, "assets")
    assert not os.path.isdir(network_assets) or not os.listdir(network_assets)
