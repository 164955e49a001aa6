"""LongformerMaskedLM and its mask generator."""

import keras
import numpy as np
import tensorflow as tf

from textmill.trainer.models.longformer import (
    LongformerBackbone,
    LongformerMaskedLM,
    LongformerMaskedLMMaskGenerator,
)

VOCABULARY_SIZE = 40
MASK_TOKEN_ID = 3
BACKBONE = {
    "vocabulary_size": VOCABULARY_SIZE,
    "num_layers": 1,
    "num_heads": 2,
    "hidden_dim": 16,
    "intermediate_dim": 32,
    "attention_window": 8,
    "max_global_tokens": 2,
    "dropout": 0.0,
    "max_sequence_length": 64,
}


def _features(batch_size, length, seed=0):
    """`<s> tokens </s> <pad>...` rows of varying length."""
    rng = np.random.default_rng(seed)
    token_ids = np.ones((batch_size, length), "int32")
    padding_mask = np.zeros((batch_size, length), "int32")
    for row in range(batch_size):
        size = rng.integers(length // 2, length + 1)
        token_ids[row, :size] = rng.integers(4, VOCABULARY_SIZE, size)
        token_ids[row, 0], token_ids[row, size - 1] = 0, 2
        padding_mask[row, :size] = 1
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def _masker(length):
    return LongformerMaskedLMMaskGenerator(
        vocabulary_size=VOCABULARY_SIZE,
        mask_selection_length=length,
        mask_token_id=MASK_TOKEN_ID,
    )


def test_mask_generator_masks_15_percent_of_real_tokens():
    features = _features(64, 40)
    x, y, weights = _masker(12)(features)
    x, y, weights = (
        keras.tree.map_structure(np.asarray, v) for v in (x, y, weights)
    )
    original = features["token_ids"]
    selectable = ~np.isin(original, [0, 1, 2])
    rows = np.arange(len(original))[:, None]
    positions = x["mask_positions"]
    real = weights > 0
    # Labels are the original tokens; specials and padding are never picked.
    np.testing.assert_array_equal(y[real], original[rows, positions][real])
    assert selectable[rows, positions][real].all()
    rate = real.sum() / selectable.sum()
    assert 0.11 < rate < 0.19
    changed = x["token_ids"][rows, positions][real] != y[real]
    masked = x["token_ids"][rows, positions][real] == MASK_TOKEN_ID
    assert 0.7 < masked.mean() < 0.9
    assert changed.mean() > masked.mean()  # random replacements too
    untouched = np.ones_like(original, bool)
    untouched[rows, positions] = ~real
    np.testing.assert_array_equal(
        x["token_ids"][untouched], original[untouched]
    )
    np.testing.assert_array_equal(x["padding_mask"], features["padding_mask"])


def test_fit_on_tf_data_reduces_the_loss():
    keras.utils.set_random_seed(0)
    masked_lm = LongformerMaskedLM(LongformerBackbone(**BACKBONE))
    masked_lm.compile(optimizer=keras.optimizers.Adam(1e-2))
    # Masks drawn once (cache): every epoch sees the same 16 examples, so
    # the loss compares like with like whatever random state earlier tests
    # left behind.
    dataset = (
        tf.data.Dataset.from_tensor_slices(_features(16, 24))
        .batch(8)
        .map(_masker(6))
        .cache()
    )
    history = masked_lm.fit(dataset, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.95 * losses[0], losses


def test_global_start_token_is_configurable():
    keras.utils.set_random_seed(0)
    backbone = LongformerBackbone(**BACKBONE)
    features = _features(2, 30)
    features["mask_positions"] = np.array([[20, 25], [21, 22]], "int32")
    with_global = LongformerMaskedLM(backbone).predict(features, verbose=0)
    local_only = LongformerMaskedLM(backbone, global_start_token=False)
    local_only.masked_lm_head.set_weights(
        LongformerMaskedLM(backbone).masked_lm_head.get_weights()
    )
    assert not np.allclose(
        with_global, local_only.predict(features, verbose=0), atol=1e-5
    )


def test_preset_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    masked_lm = LongformerMaskedLM(
        LongformerBackbone(**BACKBONE), global_start_token=False
    )
    features = _features(2, 17)
    features["mask_positions"] = np.array([[1, 5], [2, 3]], "int32")
    masked_lm.save_to_preset(str(tmp_path))
    restored = LongformerMaskedLM.from_preset(str(tmp_path))
    assert restored.global_start_token is False
    np.testing.assert_allclose(
        restored.predict(features, verbose=0),
        masked_lm.predict(features, verbose=0),
        atol=1e-6,
    )
