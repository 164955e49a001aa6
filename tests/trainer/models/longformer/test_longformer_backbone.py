"""LongformerBackbone and LongformerSelfAttention behaviour."""

import ast
import os

import keras
import numpy as np
import pytest

import textmill.trainer.models.longformer as longformer_package
from textmill.trainer.models.longformer import (
    LongformerBackbone,
    LongformerSelfAttention,
)

CONFIG = {
    "vocabulary_size": 50,
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 16,
    "intermediate_dim": 32,
    "attention_window": [4, 8],
    "max_global_tokens": 3,
    "dropout": 0.0,
    "max_sequence_length": 64,
}


def _inputs(batch_size, length, seed=0):
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(3, CONFIG["vocabulary_size"], (batch_size, length))
    return {
        "token_ids": token_ids.astype("int32"),
        "padding_mask": np.ones((batch_size, length), "int32"),
    }


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(0)
    return LongformerBackbone(**CONFIG)


def test_config_round_trip(backbone):
    restored = LongformerBackbone.from_config(backbone.get_config())
    assert restored.get_config() == backbone.get_config()
    assert restored.attention_window == [4, 8]
    assert restored.count_params() == backbone.count_params()


def test_save_and_reload_keras_file(backbone, tmp_path):
    inputs = _inputs(2, 11)
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        restored.predict(inputs, verbose=0),
        backbone.predict(inputs, verbose=0),
        atol=1e-6,
    )


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")
@pytest.mark.parametrize("length", [1, 3, 7, 8, 33])
def test_any_length_keeps_its_shape(backbone, length):
    inputs = _inputs(2, length)
    inputs["padding_mask"][:, 0] = 2
    output = backbone(inputs)
    assert tuple(output.shape) == (2, length, CONFIG["hidden_dim"])
    assert np.isfinite(keras.ops.convert_to_numpy(output)).all()


def test_padding_does_not_change_real_tokens(backbone):
    inputs = _inputs(1, 9)
    inputs["padding_mask"][0, [0, 5]] = 2
    padded = {
        "token_ids": np.pad(
            inputs["token_ids"], ((0, 0), (0, 6)), constant_values=1
        ),
        "padding_mask": np.pad(inputs["padding_mask"], ((0, 0), (0, 6))),
    }
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(backbone(padded))[:, :9],
        keras.ops.convert_to_numpy(backbone(inputs)),
        atol=1e-5,
    )


def _attention_outputs(layer, hidden, mask):
    return keras.ops.convert_to_numpy(layer(hidden, mask))


def test_local_attention_sees_only_its_window():
    layer = LongformerSelfAttention(num_heads=2, attention_window=4)
    rng = np.random.default_rng(1)
    hidden = rng.normal(size=(1, 12, 8)).astype("float32")
    mask = np.ones((1, 12), "int32")
    before = _attention_outputs(layer, hidden, mask)
    hidden[0, 6] += 1.0
    changed = np.abs(_attention_outputs(layer, hidden, mask) - before).max(-1)
    # Token 6 is seen by tokens 4..8 (two on each side) and nobody else.
    np.testing.assert_array_equal(
        np.flatnonzero(changed[0] > 1e-6), [4, 5, 6, 7, 8]
    )


def test_global_tokens_see_and_are_seen_by_everyone():
    layer = LongformerSelfAttention(
        num_heads=2, attention_window=4, max_global_tokens=2
    )
    rng = np.random.default_rng(2)
    hidden = rng.normal(size=(1, 12, 8)).astype("float32")
    mask = np.ones((1, 12), "int32")
    mask[0, 0] = 2
    before = _attention_outputs(layer, hidden, mask)
    hidden[0, 10] += 1.0
    changed = np.abs(_attention_outputs(layer, hidden, mask) - before).max(-1)
    # The global <s> and the window of 10 change; 1..7 do not.
    np.testing.assert_array_equal(
        np.flatnonzero(changed[0] > 1e-6), [0, 8, 9, 10, 11]
    )
    hidden[0, 0] += 1.0
    changed = np.abs(_attention_outputs(layer, hidden, mask) - before).max(-1)
    assert (changed[0] > 1e-6).all()  # everyone attends to <s>


def test_padding_queries_output_only_the_bias():
    layer = LongformerSelfAttention(num_heads=2, attention_window=4)
    hidden = np.random.default_rng(3).normal(size=(1, 6, 8)).astype("float32")
    mask = np.array([[2, 1, 1, 1, 0, 0]], "int32")
    output = _attention_outputs(layer, hidden, mask)
    bias = layer.output_dense.bias.numpy()
    np.testing.assert_allclose(output[0, 4:], np.stack([bias, bias]), atol=1e-6)


def _marked(batch_size, length, globals_by_row):
    mask = np.ones((batch_size, length), "int32")
    for row, positions in enumerate(globals_by_row):
        mask[row, positions] = 2
    return mask


def test_any_number_of_global_tokens_by_default():
    # Sized from the batch: as exact as a static bound that fits.
    keras.utils.set_random_seed(4)
    dynamic = LongformerSelfAttention(num_heads=2, attention_window=4)
    hidden = np.random.default_rng(4).normal(size=(2, 10, 8)).astype("float32")
    mask = _marked(2, 10, [[1, 4, 8, 9], [0]])
    output = _attention_outputs(dynamic, hidden, mask)
    bounded = LongformerSelfAttention.from_config(
        {**dynamic.get_config(), "max_global_tokens": 6}
    )
    bounded.build(hidden.shape)
    bounded.set_weights(dynamic.get_weights())
    np.testing.assert_allclose(
        output, _attention_outputs(bounded, hidden, mask), atol=1e-6
    )
    # Every marked token is global: token 9 sees token 1, beyond its window.
    hidden[0, 1] += 1.0
    changed = np.abs(_attention_outputs(dynamic, hidden, mask) - output)
    assert changed[0, 9].max() > 1e-6
    assert not dynamic.supports_jit and bounded.supports_jit


def test_global_slots_follow_each_batch_in_one_graph(backbone):
    dynamic = LongformerBackbone(**{**CONFIG, "max_global_tokens": None})
    dynamic.set_weights(backbone.get_weights())
    reference = LongformerBackbone(**{**CONFIG, "max_global_tokens": 12})
    reference.set_weights(backbone.get_weights())
    for globals_by_row in ([[0], []], [list(range(0, 24, 2)), [3]]):
        inputs = _inputs(2, 24)
        inputs["padding_mask"] = _marked(2, 24, globals_by_row)
        np.testing.assert_allclose(
            dynamic.predict(inputs, verbose=0),
            reference.predict(inputs, verbose=0),
            atol=1e-5,
        )


def test_more_global_tokens_than_the_bound_is_an_error():
    layer = LongformerSelfAttention(
        num_heads=2, attention_window=4, max_global_tokens=2
    )
    hidden = np.random.default_rng(5).normal(size=(2, 10, 8)).astype("float32")
    mask = _marked(2, 10, [[0], [1, 4, 8]])
    with pytest.raises(Exception, match="max_global_tokens=2") as error:
        layer(hidden, mask)
    assert "more tokens marked global" in str(error.value)


def test_over_the_bound_under_xla_outputs_nan(backbone):
    # XLA compiles the run-time check away: the sequence over the bound
    # (3) outputs NaN instead of a silently different answer.
    inputs = _inputs(2, 16)
    inputs["padding_mask"] = _marked(2, 16, [[0, 5], [0, 3, 6, 9]])
    backbone.compile(jit_compile=True)
    try:
        output = backbone.predict(inputs, verbose=0)
    finally:
        backbone.compile(jit_compile=False)
    assert np.isfinite(output[0]).all()
    assert np.isnan(output[1]).all()


def test_jit_compile_falls_back_with_slots_sized_from_data():
    model = LongformerBackbone(**{**CONFIG, "max_global_tokens": None})
    with pytest.warns(UserWarning, match="jit_compile"):
        model.compile(jit_compile=True)
    assert not model.jit_compile
    inputs = _inputs(1, 12)
    inputs["padding_mask"] = _marked(1, 12, [[0, 2, 4, 6, 11]])
    assert np.isfinite(model.predict(inputs, verbose=0)).all()


def test_jit_compile_matches_eager(backbone):
    inputs = _inputs(2, 13)
    inputs["padding_mask"][0, [0, 7]] = 2
    inputs["padding_mask"][1, 10:] = 0
    expected = keras.ops.convert_to_numpy(backbone(inputs))
    backbone.compile(jit_compile=True)
    np.testing.assert_allclose(
        backbone.predict(inputs, verbose=0), expected, atol=1e-5
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_outputs_are_finite(policy):
    model = LongformerBackbone(**CONFIG, dtype=policy)
    inputs = _inputs(2, 21)
    inputs["padding_mask"][:, 0] = 2
    inputs["padding_mask"][1, 15:] = 0
    output = model(inputs)
    dtype = keras.backend.standardize_dtype(output.dtype)
    assert dtype == policy.split("_")[1]
    assert np.isfinite(
        keras.ops.convert_to_numpy(output).astype("float32")
    ).all()
    attention = model.transformer_layers[0].self_attention
    assert attention.query_dense.kernel.dtype == "float32"


def test_invalid_windows_are_rejected():
    with pytest.raises(ValueError, match="one window per layer"):
        LongformerBackbone(**{**CONFIG, "attention_window": [4, 8, 8]})
    with pytest.raises(ValueError, match="even positive"):
        LongformerSelfAttention(num_heads=2, attention_window=5)


def test_model_code_does_not_import_tensorflow():
    # The model code must run on any Keras backend (e.g. JAX on GPUs/TPUs).
    package_dir = os.path.dirname(longformer_package.__file__)
    for name in sorted(os.listdir(package_dir)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(package_dir, name)) as f:
            tree = ast.parse(f.read())
        # Module-level imports only: a backend-specific check may import
        # its backend inside a `keras.backend.backend()` branch.
        for node in tree.body:
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert not module.startswith("tensorflow"), (name, module)
