"""The Longformer's bare-network export and its TFLite model, at real sizes.

The network (`logits_from_ids`, what TFLite converts) of a Longformer at the
real window (512) and 2,048 tokens: float32 TFLite against the SavedModel
with padding and any number of global tokens, and a model with a static
bound on global tokens, which refuses (SavedModel) or outputs NaN (TFLite)
when an input has more.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from textmill.families.longformer.export import export_network
from textmill.serving.signatures import LOGITS_FROM_IDS
from textmill.serving.tflite_conversion import TFLiteLogits, convert_to_tflite
from textmill.trainer.models.longformer import (
    LongformerBackbone,
    LongformerMaskedLM,
)

LENGTH = 2048
VOCABULARY_SIZE = 64
TOLERANCE = 1e-4


def _masked_lm(max_global_tokens):
    keras.utils.set_random_seed(0)
    backbone = LongformerBackbone(
        vocabulary_size=VOCABULARY_SIZE,
        num_layers=2,
        num_heads=4,
        hidden_dim=32,
        intermediate_dim=64,
        attention_window=512,
        max_global_tokens=max_global_tokens,
        dropout=0.0,
        max_sequence_length=LENGTH,
    )
    return LongformerMaskedLM(backbone)


def _inputs(num_global, num_padding, seed=0):
    """`<s>` global plus `num_global - 1` tokens, then padding."""
    rng = np.random.default_rng(seed)
    real = LENGTH - num_padding
    token_ids = np.ones((1, LENGTH), "int32")  # 1 = <pad>
    token_ids[0, :real] = rng.integers(3, VOCABULARY_SIZE, real)
    token_ids[0, 0], token_ids[0, real - 1] = 0, 2
    padding_mask = np.zeros((1, LENGTH), "int32")
    padding_mask[0, :real] = 1
    others = rng.choice(np.arange(1, real), num_global - 1, replace=False)
    padding_mask[0, [0, *others]] = 2
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def _export(max_global_tokens, directory):
    """The network's SavedModel signature and its float32 TFLite model."""
    export_network(_masked_lm(max_global_tokens), str(directory), LENGTH)
    signature = tf.saved_model.load(str(directory)).signatures[LOGITS_FROM_IDS]

    def saved_model(inputs):
        feed = {name: tf.constant(value) for name, value in inputs.items()}
        return signature(**feed)["logits"].numpy()

    return saved_model, TFLiteLogits(
        convert_to_tflite(str(directory), "float32")
    )


@pytest.mark.slow
def test_tflite_float32_matches_saved_model_at_2048_tokens(tmp_path):
    saved_model, tflite = _export(None, tmp_path / "network")
    # One converted model takes any number of global tokens.
    for num_global, num_padding in ((1, 0), (100, 148), (300, 0)):
        inputs = _inputs(num_global, num_padding)
        expected = saved_model(inputs)
        assert expected.shape == (1, LENGTH, VOCABULARY_SIZE)
        np.testing.assert_allclose(
            tflite(inputs), expected, atol=TOLERANCE, err_msg=str(num_global)
        )


@pytest.mark.slow
def test_a_static_bound_refuses_more_global_tokens(tmp_path):
    saved_model, tflite = _export(4, tmp_path / "network")
    within = _inputs(4, 100)
    np.testing.assert_allclose(
        tflite(within), saved_model(within), atol=TOLERANCE
    )
    over = _inputs(5, 100)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="max_global_tokens=4"
    ):
        saved_model(over)
    # The TFLite converter drops run-time checks: NaN, not another answer.
    assert np.isnan(tflite(over)).all()
