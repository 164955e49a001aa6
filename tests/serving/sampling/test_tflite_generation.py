"""TFLite generation (the whole greedy loop) against the SavedModel."""

import os

import numpy as np
import pytest
import tensorflow as tf

from textmill.serving.tflite_conversion import convert_generation_to_tflite
from textmill.serving.tflite_generation import (
    TFLiteGenerator,
    export_generation_tflite,
)

PROMPTS = [
    "The river",
    "Return the path of the module; raise an error",
    "Numbers 12",
    "x",
]
NEW = 7


@pytest.fixture(scope="module")
def generation_export(text_lm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tflite")
    section = export_generation_tflite(
        text_lm.network_dir,
        os.path.join(text_lm.network_dir, "assets.extra"),
        str(folder),
        ["float32", "int8"],
    )
    return folder, section


@pytest.fixture(scope="module")
def tflite_dir(generation_export):
    return generation_export[0]


def saved_model_greedy(text_lm, prompts, new=NEW):
    out = text_lm.serving.signatures["generate"](
        prompt=tf.constant(prompts), max_new_tokens=tf.constant(new)
    )
    return out


@pytest.mark.slow
def test_float32_greedy_text_equals_the_saved_models(text_lm, tflite_dir):
    generator = TFLiteGenerator(str(tflite_dir / "generate_float32.tflite"))
    expected = saved_model_greedy(text_lm, PROMPTS)
    texts = [
        t.decode("utf-8", "replace") for t in expected["completion"].numpy()
    ]
    assert generator.generate(PROMPTS, NEW) == texts
    # One prompt at a time gives the same text as the batch.
    assert [generator.generate([p], NEW)[0] for p in PROMPTS] == texts
    # Token scores are the model's, up to float error.
    ids = text_lm.tokenizer.tokenize(tf.constant(PROMPTS)).to_list()
    _, scores = generator.generate_ids(ids, NEW)
    np.testing.assert_allclose(
        [sum(s) for s in scores], expected["sequence_score"], atol=1e-4
    )


@pytest.mark.slow
def test_long_prompts_keep_their_last_tokens(text_lm, tflite_dir):
    generator = TFLiteGenerator(str(tflite_dir / "generate_float32.tflite"))
    long_prompt = [" ".join(["the river runs"] * 30)]
    expected = saved_model_greedy(text_lm, long_prompt, 30)["completion"]
    assert generator.generate(long_prompt, 30) == [
        expected.numpy()[0].decode("utf-8", "replace")
    ]


@pytest.mark.slow
def test_int8_model_is_smaller_and_generates(text_lm, tflite_dir):
    float32 = tflite_dir / "generate_float32.tflite"
    int8 = tflite_dir / "generate_int8.tflite"
    assert int8.stat().st_size < float32.stat().st_size
    generator = TFLiteGenerator(str(int8))
    ids = text_lm.tokenizer.tokenize(tf.constant(PROMPTS)).to_list()
    new_ids, scores = generator.generate_ids(ids, NEW)
    for tokens, token_scores in zip(new_ids, scores, strict=True):
        assert 1 <= len(tokens) <= NEW
        assert all(s < 0 for s in token_scores)


@pytest.mark.slow
def test_metadata_section_reports_files_and_parity(generation_export):
    folder, section = generation_export
    assert section["signature"] == "generate_ids"
    assert sorted(os.listdir(folder)) == [
        "generate_float32.tflite",
        "generate_int8.tflite",
        "merges.txt",
        "vocab.txt",
    ]
    for variant, info in section["variants"].items():
        assert (folder / info["file"]).stat().st_size == info["bytes"]
        assert 0 <= info["parity"]["token_agreement"] <= 1, variant
    float32 = section["variants"]["float32"]["parity"]
    assert float32["identical"] == float32["prompts"]
    assert float32["token_agreement"] == 1.0


def test_runner_names_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab_path="):
        model = tmp_path / "generate_float32.tflite"
        model.write_bytes(b"")
        TFLiteGenerator(str(model))


def test_conversion_needs_a_generate_ids_signature(tmp_path):
    module = tf.Module()
    module.f = tf.function(
        lambda x: {"y": x + 1}, input_signature=[tf.TensorSpec([], tf.int32)]
    )
    tf.saved_model.save(module, str(tmp_path), signatures={"f": module.f})
    with pytest.raises(ValueError, match="no 'generate_ids' signature"):
        convert_generation_to_tflite(str(tmp_path), "float32")
