"""Parity with Hugging Face's Longformer through the checkpoint converters.

`hf_reference.py` builds random HF models in a separate process (the TF
classes of `transformers` need legacy Keras) and dumps their outputs; here
the checkpoints are converted and our outputs compared. The real-size cases
(window 512, up to 4,096 tokens, up to 200 global tokens) are slow; the one
reference process computes them only when a slow test of this module runs.
"""

import json
import os

import keras_hub
import numpy as np
import pytest

from tests.hf_reference_script import run_hf_reference_script
from textmill.pipelines.cli import main as textmill_cli
from textmill.trainer.convert.longformer import (
    TOKENIZER_ASSET_DIR,
    convert_longformer,
    convert_roberta_to_longformer,
)
from textmill.trainer.models.longformer import (
    LongformerBackbone,
    LongformerMaskedLM,
)

pytest.importorskip("transformers")

HF_SCRIPT = os.path.join(os.path.dirname(__file__), "hf_reference.py")
LONGFORMER_CASES = [
    "h5_window4_no_global",
    "tf_safetensors_list_start",
    "pt_safetensors_scattered",
    "base_model_globals",
]
# Must match `REAL_SIZE_CASES` in hf_reference.py.
REAL_SIZE_CASES = [
    "4096_start_global",
    "2500_3_global_301_padding",
    "3000_100_global",
    "4096_200_global",
]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def hf_reference(runs_slow_tests, tmp_path_factory):
    """Directory of HF checkpoints and `<case>.npz` reference outputs."""
    out_dir = tmp_path_factory.mktemp("hf_reference")
    real_size = ["--real-size"] if runs_slow_tests else []
    run_hf_reference_script(HF_SCRIPT, str(out_dir), *real_size, timeout=600)
    return out_dir


def _all_positions(token_ids):
    batch_size, length = token_ids.shape
    return np.tile(np.arange(length, dtype="int32"), (batch_size, 1))


@pytest.mark.parametrize("case", LONGFORMER_CASES)
def test_converted_longformer_matches_hf(hf_reference, tmp_path, case):
    expected = np.load(hf_reference / f"{case}.npz")
    preset = convert_longformer(str(hf_reference / case), str(tmp_path))
    inputs = {
        "token_ids": expected["token_ids"],
        "padding_mask": expected["padding_mask"],
    }

    backbone = keras_hub.models.Backbone.from_preset(preset)
    assert isinstance(backbone, LongformerBackbone)
    hidden = backbone.predict(inputs, verbose=0)
    np.testing.assert_allclose(hidden, expected["hidden"], atol=TOLERANCE)

    if "logits" in expected:
        masked_lm = LongformerMaskedLM.from_preset(
            preset, global_start_token=False
        )
        inputs["mask_positions"] = _all_positions(inputs["token_ids"])
        logits = masked_lm.predict(inputs, verbose=0)
        np.testing.assert_allclose(logits, expected["logits"], atol=TOLERANCE)
    else:
        assert not os.path.exists(os.path.join(preset, "task.json"))


def test_roberta_to_longformer_keeps_roberta_outputs(hf_reference, tmp_path):
    # With a window covering the whole sequence and global projections
    # copied from the local ones, Longformer is RoBERTa, global <s> or not.
    expected = np.load(hf_reference / "roberta.npz")
    preset = convert_roberta_to_longformer(
        str(hf_reference / "roberta"),
        str(tmp_path),
        max_positions=80,
        attention_window=64,
    )
    masked_lm = LongformerMaskedLM.from_preset(preset)
    assert masked_lm.global_start_token
    token_ids = expected["token_ids"]
    logits = masked_lm.predict(
        {
            "token_ids": token_ids,
            "padding_mask": expected["padding_mask"],
            "mask_positions": _all_positions(token_ids),
        },
        verbose=0,
    )
    real = expected["padding_mask"] > 0  # RoBERTa also updates padding
    np.testing.assert_allclose(
        logits[real], expected["logits"][real], atol=TOLERANCE
    )

    backbone = masked_lm.backbone
    assert backbone.max_sequence_length == 80
    positions = backbone.embeddings.position_embedding.embeddings.numpy()
    assert positions.shape[0] == 80 + 2
    learned = 32  # RoBERTa's max_position_embeddings 34 minus 2
    np.testing.assert_array_equal(
        positions[2 + learned : 2 + 2 * learned], positions[2 : 2 + learned]
    )
    attention = backbone.transformer_layers[0].self_attention
    np.testing.assert_array_equal(
        attention.global_key_dense.kernel.numpy(),
        attention.key_dense.kernel.numpy(),
    )
    for asset in ("vocab.json", "merges.txt"):
        assert os.path.isfile(os.path.join(preset, TOKENIZER_ASSET_DIR, asset))


def test_converter_rejects_other_model_types(hf_reference, tmp_path):
    with pytest.raises(ValueError, match="'roberta'.*expected 'longformer'"):
        convert_longformer(str(hf_reference / "roberta"), str(tmp_path))


def test_converter_reports_mismatched_config(hf_reference, tmp_path):
    source = hf_reference / "h5_window4_no_global"
    broken = tmp_path / "broken"
    broken.mkdir()
    config = json.loads((source / "config.json").read_text())
    config["intermediate_size"] += 1
    (broken / "config.json").write_text(json.dumps(config))
    os.symlink(source / "tf_model.h5", broken / "tf_model.h5")
    with pytest.raises(ValueError, match="intermediate.dense.weight"):
        convert_longformer(str(broken), str(tmp_path / "out"))


@pytest.fixture(scope="module")
def real_size_preset(hf_reference, tmp_path_factory):
    """The real-size checkpoint, converted by `textmill convert longformer`."""
    out_dir = str(tmp_path_factory.mktemp("real_size") / "preset")
    source = str(hf_reference / "real_size")
    assert textmill_cli(["convert", "longformer", source, out_dir]) == 0
    return out_dir


@pytest.mark.slow
@pytest.mark.parametrize("case", REAL_SIZE_CASES)
def test_real_size_matches_hf(real_size_preset, hf_reference, case):
    # Window 512 at real lengths, padding, and more global tokens than any
    # static bound the model used to have (64).
    expected = np.load(hf_reference / f"real_{case}.npz")
    backbone = keras_hub.models.Backbone.from_preset(real_size_preset)
    assert backbone.max_global_tokens is None
    hidden = backbone.predict(
        {
            "token_ids": expected["token_ids"],
            "padding_mask": expected["padding_mask"],
        },
        verbose=0,
    )
    np.testing.assert_allclose(hidden, expected["hidden"], atol=TOLERANCE)
