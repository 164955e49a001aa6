"""LiteRT-LM bundles run in the real LiteRT-LM runtime (CPU) against the
Keras model's greedy tokens."""

import json
import os

import keras_hub
import pytest
import tensorflow as tf
from tensorflow.lite.tools import flatbuffer_utils

from textmill.serving.litert_lm import export
from textmill.serving.litert_lm.environment import VENV_ENV
from textmill.serving.litert_lm.export import (
    export_litert_lm,
    litertlm_filename,
)
from textmill.serving.litert_lm.hf_tokenizer import build_hf_tokenizer
from textmill.serving.litert_lm.kv_cache_tflite import (
    cache_names,
    convert_kv_cache_tflite,
    signature_module,
)
from textmill.serving.litert_lm.parity import greedy_parity
from textmill.serving.litert_lm.runtime import run_litert_lm
from textmill.serving.sampling.token_id_generation import generate_token_ids
from textmill.trainer.models.gpt2.gpt2_causal_lm import save_gpt2_preset

from .conftest import TEXT_MAX_LENGTH

PREFILL = 8
NEW = 8
PROMPTS = (
    "x",
    "The river",
    "Numbers 12, 345",
    # Longer than two prefill chunks: the runtime prefills it in three.
    # With the start token and NEW tokens it fits the bundle's budget.
    "Return the path of the module; raise an error if it is missing.",
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def preset_dir(text_lm, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("preset"))
    save_gpt2_preset(text_lm.model, text_lm.files, folder)
    return folder


@pytest.fixture(scope="module")
def bundles(text_lm, preset_dir, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("litertlm"))
    section = export_litert_lm(
        preset_dir,
        text_lm.network_dir,
        folder,
        prefill_length=PREFILL,
        prompts=PROMPTS,
        max_new_tokens=NEW,
    )
    return folder, section


def keras_greedy_ids(text_lm, prompt_ids):
    """New ids of textmill's greedy loop on the Keras model."""
    ids = tf.ragged.constant(prompt_ids, dtype=tf.int32)
    out = generate_token_ids(
        text_lm.model,
        ids.to_tensor(0),
        tf.cast(ids.row_lengths(), tf.int32),
        tf.constant(NEW),
        bos_id=text_lm.eos,
        stop_token_id=text_lm.eos,
        max_length=TEXT_MAX_LENGTH,
    )["new_token_ids"].numpy()
    return [[int(t) for t in row if t >= 0] for row in out]


def test_prompts_cross_prefill_chunks(preset_dir):
    tokenizer = build_hf_tokenizer(preset_dir)
    lengths = [len(tokenizer.encode(p).ids) for p in PROMPTS]
    # With the start token, the runtime prefills all but the last token.
    assert max(lengths) > 2 * PREFILL, lengths
    assert min(lengths) == 1, lengths


def test_float32_runtime_greedy_text_equals_keras(text_lm, preset_dir, bundles):
    folder, _ = bundles
    tokenizer = build_hf_tokenizer(preset_dir)
    prompt_ids = [tokenizer.encode(p).ids for p in PROMPTS]
    # The bundle's tokenizer gives the in-graph tokenizer's ids.
    in_graph = text_lm.tokenizer.tokenize(tf.constant(PROMPTS)).to_list()
    assert prompt_ids == in_graph
    expected = keras_greedy_ids(text_lm, prompt_ids)
    replies = run_litert_lm(
        os.path.join(folder, litertlm_filename("float32")), PROMPTS, NEW
    )
    texts = [
        tokenizer.decode([t for t in ids if t != text_lm.eos])
        for ids in expected
    ]
    assert [r["text"] for r in replies] == texts
    # A random model's greedy text is not empty or constant.
    assert len(set(texts)) == len(texts)
    for reply in replies:
        assert reply["benchmark"]["decode_tokens_per_s"] > 0


def test_section_reports_sizes_and_parity(bundles):
    folder, section = bundles
    assert section["signatures"] == [f"prefill_{PREFILL}", "decode"]
    assert section["max_num_tokens"] == TEXT_MAX_LENGTH - PREFILL
    float32 = section["variants"]["float32"]
    assert float32["parity"] == {
        "prompts": len(PROMPTS),
        "identical": len(PROMPTS),
        "token_agreement": 1.0,
    }
    int8 = section["variants"]["int8"]
    assert 0.0 <= int8["parity"]["token_agreement"] <= 1.0
    assert int8["bytes"] < float32["bytes"]
    for variant, info in section["variants"].items():
        path = os.path.join(folder, litertlm_filename(variant))
        assert os.path.getsize(path) == info["bytes"]
    json.dumps(section)  # goes into metadata.json


def test_tflite_model_has_the_runtime_names_and_one_copy_of_weights(
    text_lm,
):
    flatbuffer = convert_kv_cache_tflite(
        text_lm.model, PREFILL, TEXT_MAX_LENGTH, "float32"
    )
    # Both signatures read the same weight buffers: the model's constant
    # data is one float32 copy of the weights (two would be twice their
    # bytes; the rest is a few small constants of the graph).
    model = flatbuffer_utils.convert_bytearray_to_object(flatbuffer)
    data_bytes = sum(len(b.data) for b in model.buffers if b.data is not None)
    weight_bytes = 4 * text_lm.model.count_params()
    assert weight_bytes <= data_bytes < 1.5 * weight_bytes
    assert len(model.subgraphs) == 2
    signatures = tf.lite.Interpreter(
        model_content=flatbuffer
    ).get_signature_list()
    caches = cache_names(1)
    assert caches == ["kv_cache_k_0", "kv_cache_v_0"]
    for name in (f"prefill_{PREFILL}", "decode"):
        assert sorted(signatures[name]["inputs"]) == sorted(
            ["tokens", "input_pos", *caches]
        )
        assert sorted(signatures[name]["outputs"]) == sorted(
            ["logits", *caches]
        )


def test_both_signatures_capture_one_copy_of_the_weights(text_lm):
    module = signature_module(text_lm.model, PREFILL, TEXT_MAX_LENGTH)
    weights = {v.ref() for v in module.weights}
    assert len(weights) == len(text_lm.model.weights)
    weight_bytes = 4 * text_lm.model.count_params()
    for function in module.chunk_functions.values():
        concrete = function.get_concrete_function()
        # The weights are captured variables, not constants of the graph.
        assert {v.ref() for v in concrete.variables} == weights
        constant_bytes = sum(
            len(node.attr["value"].tensor.tensor_content)
            for node in concrete.graph.as_graph_def().node
            if node.op == "Const"
        )
        assert constant_bytes < weight_bytes / 4


def test_lengths_that_do_not_fit_are_refused(text_lm):
    with pytest.raises(ValueError, match="max_sequence_length"):
        convert_kv_cache_tflite(
            text_lm.model, PREFILL, TEXT_MAX_LENGTH + 1, "float32"
        )
    with pytest.raises(ValueError, match="variant='float16'"):
        convert_kv_cache_tflite(text_lm.model, PREFILL, 16, "float16")


def test_missing_environment_is_reported(
    text_lm, preset_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv(VENV_ENV, str(tmp_path / "no-venv"))
    section = export_litert_lm(preset_dir, text_lm.network_dir, str(tmp_path))
    assert "make setup" in section["skipped"]
    assert not list(tmp_path.glob("*.litertlm"))
    with pytest.raises(FileNotFoundError, match="make setup"):
        run_litert_lm(__file__, ["x"], 1)


def test_models_over_the_parameter_limit_are_skipped_with_the_reason(
    text_lm, preset_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(export, "MAX_PARAMETERS", 1000)
    section = export_litert_lm(preset_dir, text_lm.network_dir, str(tmp_path))
    parameters = text_lm.model.count_params()
    assert f"{parameters:,} parameters" in section["skipped"]
    assert "MAX_PARAMETERS=1,000" in section["skipped"]
    assert not list(tmp_path.glob("*.litertlm"))


def test_parity_counts_tokens_up_to_the_first_difference(preset_dir):
    tokenizer = build_hf_tokenizer(preset_dir)
    eos = tokenizer.token_to_id("<|endoftext|>")
    ids = tokenizer.encode("The river runs to the sea").ids
    assert len(ids) >= 4
    text = tokenizer.decode(ids)
    replies = [
        {"text": text},
        {"text": tokenizer.decode(ids[:2]) + "\u00e9"},
    ]
    parity = greedy_parity(replies, [ids + [eos, 5], ids], (eos,), tokenizer)
    assert parity["prompts"] == 2
    assert parity["identical"] == 1
    assert parity["token_agreement"] == (len(ids) + 2) / (2 * len(ids))


def test_preset_loads_with_keras_hub_and_generates_the_bundle_tokens(
    text_lm, preset_dir
):
    causal_lm = keras_hub.models.GPT2CausalLM.from_preset(preset_dir)
    causal_lm.compile(sampler="greedy")
    bare = keras_hub.models.GPT2CausalLM.from_preset(
        preset_dir, preprocessor=None
    )
    bare.compile(sampler="greedy")
    tokenizer = build_hf_tokenizer(preset_dir)
    prompt_ids = [tokenizer.encode(p).ids for p in PROMPTS]
    # The tokens whose text the runtime gives (see the float32 test).
    expected = keras_greedy_ids(text_lm, prompt_ids)
    for prompt, ids, want in zip(PROMPTS, prompt_ids, expected, strict=True):
        preprocessor = causal_lm.preprocessor
        assert preprocessor.tokenizer(prompt).numpy().tolist() == ids
        # The start token, the prompt and NEW tokens. keras-hub's default
        # stop ids end the run at once here (its start token is its end
        # token); none of the NEW tokens is end-of-text.
        length = len(ids) + 1 + NEW
        text = causal_lm.generate(
            prompt, max_length=length, stop_token_ids=None
        )
        assert text.startswith(prompt) and len(text) > len(prompt)
        inputs = preprocessor.generate_preprocess(
            [prompt], sequence_length=length
        )
        got = bare.generate(inputs, stop_token_ids=None)["token_ids"]
        assert got[0, len(ids) + 1 :].tolist() == want, prompt
