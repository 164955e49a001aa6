"""LongformerClassifier."""

import keras
import numpy as np

from textmill.trainer.models.longformer import (
    LongformerBackbone,
    LongformerClassifier,
)

BACKBONE = {
    "vocabulary_size": 30,
    "num_layers": 1,
    "num_heads": 2,
    "hidden_dim": 16,
    "intermediate_dim": 32,
    "attention_window": 4,
    "max_global_tokens": 1,
    "dropout": 0.0,
    "max_sequence_length": 64,
}


def _data():
    # Class = whether token 5 occurs far from <s>, beyond any local window:
    # only <s>'s global attention can see it.
    rng = np.random.default_rng(0)
    token_ids = rng.integers(6, 30, (32, 24)).astype("int32")
    token_ids[:, 0] = 0
    labels = rng.integers(0, 2, 32)
    token_ids[labels == 1, 18] = 5
    features = {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)}
    return features, labels


def test_fit_learns_from_distant_tokens():
    keras.utils.set_random_seed(0)
    classifier = LongformerClassifier(
        LongformerBackbone(**BACKBONE), num_classes=2, dropout=0.0
    )
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,  # XLA training, the default on GPUs
    )
    features, labels = _data()
    history = classifier.fit(
        features, labels, epochs=12, batch_size=8, verbose=0
    )
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9


def test_preset_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    classifier = LongformerClassifier(
        LongformerBackbone(**BACKBONE), num_classes=3
    )
    features, _ = _data()
    classifier.save_to_preset(str(tmp_path))
    restored = LongformerClassifier.from_preset(str(tmp_path))
    assert restored.num_classes == 3
    np.testing.assert_allclose(
        restored.predict(features, verbose=0),
        classifier.predict(features, verbose=0),
        atol=1e-6,
    )
