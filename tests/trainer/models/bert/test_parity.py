"""Parity with Hugging Face's BERT pretraining model through the converter.

`hf_reference.py` builds random `TFBertForPreTraining` models in a separate
process (the TF classes of `transformers` need legacy Keras) and dumps their
MLM and NSP logits for padded pairs with segment ids; here the checkpoints
are converted and our logits compared: largest absolute difference
<= 1e-4 in float32. The real-size case (BERT-base's 30,522-token vocabulary,
512 tokens) is slow; the reference process computes it only when it runs.
"""

import json
import os
import shutil

import keras_hub
import numpy as np
import pytest

from tests.hf_reference_script import run_hf_reference_script
from textmill.trainer.convert.bert import convert_bert
from textmill.trainer.models.bert import (
    BertBackbone,
    BertNextSentencePredictor,
    BertPretrainer,
)
from textmill.transform.wordpiece_analyzer import PRESET_VOCAB_PATH

pytest.importorskip("transformers")

HF_SCRIPT = os.path.join(os.path.dirname(__file__), "hf_reference.py")
CASES = [
    "h5_exact_gelu",
    "tf_safetensors_exact_gelu",
    "pt_safetensors_tanh_gelu",
]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def hf_reference(runs_slow_tests, tmp_path_factory):
    """Directory of HF checkpoints and `<case>.npz` reference outputs."""
    out_dir = tmp_path_factory.mktemp("hf_bert_reference")
    real_size = ["--real-size"] if runs_slow_tests else []
    run_hf_reference_script(HF_SCRIPT, str(out_dir), *real_size)
    return out_dir


def inputs_of(expected) -> dict:
    return {
        name: expected[name]
        for name in ("token_ids", "segment_ids", "padding_mask")
    }


def assert_close_where_valid(ours, theirs, padding_mask):
    """Compares per-position logits at real (unpadded) positions."""
    valid = padding_mask.astype(bool)
    assert np.abs(ours[valid] - theirs[valid]).max() <= TOLERANCE


@pytest.mark.parametrize(
    "case", [*CASES, pytest.param("real_size", marks=pytest.mark.slow)]
)
def test_converted_pretrainer_matches_hf(hf_reference, tmp_path, case):
    expected = np.load(hf_reference / f"{case}.npz")
    preset = convert_bert(str(hf_reference / case), str(tmp_path / "preset"))
    inputs = inputs_of(expected)

    pretrainer = BertPretrainer.from_preset(preset)
    positions = np.tile(
        np.arange(inputs["token_ids"].shape[1], dtype="int32"),
        (inputs["token_ids"].shape[0], 1),
    )
    logits = pretrainer.predict(
        {**inputs, "mask_positions": positions}, verbose=0
    )
    assert_close_where_valid(
        logits["mlm"], expected["mlm_logits"], inputs["padding_mask"]
    )
    # Our class 1 is "B follows A", BERT's class 0.
    nsp_expected = expected["nsp_logits"][:, ::-1]
    assert np.abs(logits["nsp"] - nsp_expected).max() <= TOLERANCE

    predictor = BertNextSentencePredictor.from_preset(preset)
    nsp = predictor.predict(inputs, verbose=0)
    assert np.abs(nsp - nsp_expected).max() <= TOLERANCE

    backbone = keras_hub.models.Backbone.from_preset(preset)
    assert isinstance(backbone, BertBackbone)
    assert os.path.isfile(os.path.join(preset, PRESET_VOCAB_PATH))


def test_converted_nsp_only_checkpoint_matches_hf(hf_reference, tmp_path):
    expected = np.load(hf_reference / "nsp_only.npz")
    preset = convert_bert(
        str(hf_reference / "nsp_only"), str(tmp_path / "preset")
    )
    predictor = BertNextSentencePredictor.from_preset(preset)
    nsp = predictor.predict(inputs_of(expected), verbose=0)
    assert np.abs(nsp - expected["nsp_logits"][:, ::-1]).max() <= TOLERANCE


def test_converted_base_model_matches_hf(hf_reference, tmp_path):
    expected = np.load(hf_reference / "base_model.npz")
    preset = convert_bert(
        str(hf_reference / "base_model"), str(tmp_path / "preset")
    )
    backbone = keras_hub.models.Backbone.from_preset(preset)
    outputs = backbone.predict(inputs_of(expected), verbose=0)
    padding_mask = expected["padding_mask"]
    assert_close_where_valid(
        outputs["sequence_output"], expected["sequence_output"], padding_mask
    )
    assert (
        np.abs(outputs["pooled_output"] - expected["pooled_output"]).max()
        <= TOLERANCE
    )


def test_parity_needs_the_exact_gelu(hf_reference, tmp_path):
    """The tolerance is tight enough to tell GELU's two forms apart."""
    case = "h5_exact_gelu"
    expected = np.load(hf_reference / f"{case}.npz")
    preset = convert_bert(str(hf_reference / case), str(tmp_path / "preset"))
    exact = BertNextSentencePredictor.from_preset(preset)
    config = exact.backbone.get_config()
    config["hidden_activation"] = "gelu_approximate"
    approximate = BertNextSentencePredictor(BertBackbone.from_config(config))
    approximate.set_weights(exact.get_weights())
    nsp = approximate.predict(inputs_of(expected), verbose=0)
    assert np.abs(nsp - expected["nsp_logits"][:, ::-1]).max() > TOLERANCE


def test_converter_names_the_problem(hf_reference, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(hf_reference / "h5_exact_gelu", broken)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(
        json.dumps({**config, "hidden_act": "relu"})
    )
    with pytest.raises(ValueError, match="hidden_act='relu'"):
        convert_bert(str(broken), str(tmp_path / "out"))
    (broken / "config.json").write_text(
        json.dumps({**config, "num_hidden_layers": 3})
    )
    with pytest.raises(ValueError, match="encoder.layer.2"):
        convert_bert(str(broken), str(tmp_path / "out"))
    (broken / "config.json").write_text(
        json.dumps({**config, "model_type": "roberta"})
    )
    with pytest.raises(ValueError, match="expected 'bert'"):
        convert_bert(str(broken), str(tmp_path / "out"))
