"""Glorot-uniform kernels over each projection's true fans."""

import math

import keras
import keras_hub
import numpy as np
import pytest

from textmill.trainer.glorot_init import glorot_uniform_kernels


def _tiny_bart() -> keras.Model:
    backbone = keras_hub.models.BartBackbone(
        vocabulary_size=50,
        num_layers=1,
        num_heads=4,
        hidden_dim=64,
        intermediate_dim=256,
        max_sequence_length=16,
    )
    return keras_hub.models.BartSeq2SeqLM(backbone, preprocessor=None)


def _kernel(model: keras.Model, path: str) -> np.ndarray:
    (variable,) = [v for v in model.weights if v.path == path]
    return np.asarray(variable.numpy())


@pytest.mark.parametrize(
    "path, fan_in, fan_out",
    [
        # Heads count as one output axis of the query projection...
        ("transformer_decoder_layer_0/cross_attention/query/kernel", 64, 64),
        # ... and as one input axis of the output projection.
        (
            "transformer_decoder_layer_0/cross_attention/attention_output/kernel",
            64,
            64,
        ),
        (
            "transformer_encoder_layer_0/feedforward_intermediate_dense/kernel",
            64,
            256,
        ),
    ],
)
def test_kernels_are_glorot_uniform_over_their_fans(path, fan_in, fan_out):
    model = _tiny_bart()
    before = _kernel(model, path)
    assert before.std() == pytest.approx(0.02, rel=0.2)  # keras-hub's
    glorot_uniform_kernels(model, seed=3)
    after = _kernel(model, path)
    limit = math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(after).max() <= limit
    # A uniform(-limit, limit) has standard deviation limit / sqrt(3).
    assert after.std() == pytest.approx(limit / math.sqrt(3), rel=0.05)


def test_every_projection_is_redrawn_and_nothing_else():
    model = _tiny_bart()
    before = {v.path: np.array(v.numpy()) for v in model.weights}
    # Encoder: 4 attention + 2 feed-forward; decoder: 8 + 2.
    assert glorot_uniform_kernels(model, seed=0) == 16
    changed = {
        v.path
        for v in model.weights
        if not np.array_equal(before[v.path], v.numpy())
    }
    assert len(changed) == 16
    assert all(path.endswith("/kernel") for path in changed)


def test_the_seed_fixes_the_draw():
    first, second = _tiny_bart(), _tiny_bart()
    glorot_uniform_kernels(first, seed=7)
    glorot_uniform_kernels(second, seed=7)
    path = "transformer_encoder_layer_0/self_attention_layer/key/kernel"
    np.testing.assert_array_equal(_kernel(first, path), _kernel(second, path))
