"""Parity with Hugging Face's GPT-2 through `convert_gpt2`.

`gpt2_hf_reference.py` trains a byte-level BPE on the embedded corpus (the
standard library's docstrings), builds a random `TFGPT2LMHeadModel` over it
in a separate process (the TF classes of `transformers` need legacy Keras),
saves it as `tf_model.h5` and as a PyTorch-named `model.safetensors`, and
dumps its logits and greedy continuations. Here both checkpoints are
converted and our model, tokenizer and Transform step are compared with
Hugging Face's.
"""

import functools
import gzip
import importlib
import json
import os

import keras_hub
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from safetensors.numpy import load_file, save_file

from tests.hf_reference_script import (
    copy_checkpoint,
    run_hf_reference_script,
)
from textmill import features
from textmill.config import PipelineConfig, with_overrides
from textmill.corpus.default_corpus import write_default_corpus
from textmill.families import get_family, load_family
from textmill.pipelines.cli import main as textmill_main
from textmill.tokenization.bpe_files import BpeFiles, import_hf_bpe
from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer
from textmill.trainer.convert.gpt2 import convert_gpt2
from textmill.trainer.models.gpt2 import build_gpt2_causal_lm
from textmill.transform import byte_bpe_text

transformers = pytest.importorskip("transformers")

HF_SCRIPT = os.path.join(os.path.dirname(__file__), "gpt2_hf_reference.py")
NUM_DOCUMENTS = 50
FORMATS = ("h5", "safetensors")
TOLERANCE = 1e-4
EXTRA_TEXTS = [
    "",
    "   ",
    "\n\n\t  \n",
    "  leading and trailing   ",
    "tabs\tand\t\ttabs \t mixed\t\n end",
    "He's here, it'll be; we'd've 'T 'S 'LL don't I'M",
    "''s '''t !!'s ?'re x''ve",
    "naïve café résumé Ångström",
    "e\u0301 a\u0308 combining marks",
    "日本語のテキストと中文文本和한국어",
    "emoji 👍🏽👨\u200d👩\u200d👧\u200d👦 🇯🇵",
    "עברית שלום مرحبا بالعالم",
    "nbsp\u00a0\u00a0x\u00a0 y\u3000z\u2028w",
    "digits 0123456789 ١٢٣٤٥ ①②③ ½ 3.14 1e10 -42 2,718,281",
    "x = {'a': [1, 2], \"b\": None}  # comment",
    "https://example.com/path?q=1&x=y#frag",
]


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> list[str]:
    path = write_default_corpus(
        str(tmp_path_factory.mktemp("corpus")), max_documents=NUM_DOCUMENTS
    )
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


@pytest.fixture(scope="module")
def hf_reference(tmp_path_factory, documents):
    """Directory of the HF checkpoints, tokenizer and `reference.npz`."""
    out_dir = tmp_path_factory.mktemp("hf_reference")
    corpus = out_dir / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"text": text}) + "\n" for text in documents),
        encoding="utf-8",
    )
    run_hf_reference_script(HF_SCRIPT, str(corpus), str(out_dir))
    return out_dir


@pytest.fixture(scope="module")
def reference(hf_reference):
    return dict(np.load(hf_reference / "reference.npz"))


@pytest.fixture(scope="module")
def presets(hf_reference, tmp_path_factory) -> dict[str, str]:
    """Each checkpoint format converted once."""
    return {
        fmt: convert_gpt2(
            str(hf_reference / fmt), str(tmp_path_factory.mktemp(fmt))
        )
        for fmt in FORMATS
    }


def ids_and_mask(reference):
    return {
        "token_ids": reference["token_ids"],
        "padding_mask": reference["padding_mask"],
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_logits_match_hf(presets, reference, fmt):
    assert isinstance(
        keras_hub.models.Backbone.from_preset(presets[fmt]),
        keras_hub.models.GPT2Backbone,
    )
    causal_lm_model = keras_hub.models.GPT2CausalLM.from_preset(
        presets[fmt], preprocessor=None
    )
    logits = causal_lm_model.predict(ids_and_mask(reference), verbose=0)
    assert logits.dtype == np.float32
    assert np.abs(logits - reference["logits"]).max() <= TOLERANCE


def test_full_context_window_matches_hf(presets, reference):
    """All 1,024 positions (GPT-2's context) of one packed window."""
    window_ids = reference["window_ids"]
    assert window_ids.shape == (1, 1024)
    model = keras_hub.models.GPT2CausalLM.from_preset(
        presets["safetensors"], preprocessor=None
    )
    assert model.backbone.max_sequence_length == 1024
    logits = model.predict(
        {"token_ids": window_ids, "padding_mask": np.ones_like(window_ids)},
        verbose=0,
    )
    np.testing.assert_allclose(
        logits, reference["window_logits"], atol=TOLERANCE
    )


def test_greedy_continuation_matches_hf(presets, reference):
    """Prompts of different lengths in one batch, decoded with the cache."""
    prompts, lengths = reference["prompts"], reference["prompt_lengths"]
    continuations = reference["continuations"]
    new_tokens = continuations.shape[1]
    token_ids = np.zeros((len(lengths), lengths.max() + new_tokens), "int32")
    padding_mask = np.zeros_like(token_ids)
    for row, length in enumerate(lengths):
        token_ids[row, :length] = prompts[row, :length]
        padding_mask[row, :length] = 1
    model = keras_hub.models.GPT2CausalLM.from_preset(
        presets["safetensors"], preprocessor=None
    )
    model.compile(sampler="greedy")
    generated = model.generate(
        {"token_ids": token_ids, "padding_mask": padding_mask},
        stop_token_ids=None,
    )["token_ids"]
    for row, length in enumerate(lengths):
        np.testing.assert_array_equal(
            generated[row, length : length + new_tokens], continuations[row]
        )


def test_preset_holds_tokenizer_files(hf_reference, presets):
    preset = presets["h5"]
    for name in ("vocab.json", "merges.txt"):
        assert (hf_reference / "tokenizer" / name).read_bytes() == (
            open(os.path.join(preset, name), "rb").read()
        )
    model = keras_hub.models.GPT2CausalLM.from_preset(preset)
    assert isinstance(
        model.preprocessor, keras_hub.models.GPT2CausalLMPreprocessor
    )
    assert (
        model.preprocessor.tokenizer.vocabulary_size()
        == model.backbone.vocabulary_size
    )


def test_tokenizer_matches_hf_gpt2_tokenizers(presets, documents, tmp_path):
    preset = presets["safetensors"]
    vocab_json = os.path.join(preset, "vocab.json")
    merges_txt = os.path.join(preset, "merges.txt")
    files = import_hf_bpe(vocab_json, merges_txt, str(tmp_path))
    tokenizer = ByteBPETokenizer(files.vocab_path, files.merges_path)
    texts = documents + EXTRA_TEXTS
    ours = tokenizer.tokenize(
        tf.constant([text.encode("utf-8") for text in texts])
    ).to_list()
    fast = transformers.GPT2TokenizerFast(
        vocab_file=vocab_json, merges_file=merges_txt
    )
    slow = transformers.GPT2Tokenizer(
        vocab_file=vocab_json, merges_file=merges_txt
    )
    assert ours == fast(texts)["input_ids"]
    assert ours == slow(texts)["input_ids"]
    assert sum(map(len, ours)) > 10 * len(texts)


def test_init_from_imports_tokenizer_and_weights(
    presets, reference, documents, tmp_path
):
    """`--init-from PRESET` imports the tokenizer in Transform and the
    weights in the Trainer, and both agree with Hugging Face."""
    preset = presets["h5"]
    config = with_overrides(PipelineConfig(), train={"init_from": preset})
    family = get_family(config.family)
    custom_config = load_family(config.family).transform_config(config)
    assert custom_config["init_from"] == preset
    texts = [document[:300] for document in documents[:6]] + EXTRA_TEXTS[:6]
    raw_metadata = tft.DatasetMetadata.from_feature_spec(
        {features.TEXT_FEATURE: tf.io.FixedLenFeature([], tf.string)}
    )
    with tft_beam.Context(temp_dir=str(tmp_path / "tft_tmp")):
        (rows, _), transform_fn = (
            [{features.TEXT_FEATURE: text} for text in texts],
            raw_metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(
            functools.partial(
                importlib.import_module(family.module).preprocessing_fn,
                custom_config=custom_config,
            )
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "tft"))
    fast = transformers.GPT2TokenizerFast(
        vocab_file=os.path.join(preset, "vocab.json"),
        merges_file=os.path.join(preset, "merges.txt"),
    )
    assert [row[features.INPUT_IDS_FEATURE].tolist() for row in rows] == fast(
        texts
    )["input_ids"]

    output = tft.TFTransformOutput(str(tmp_path / "tft"))
    vocab_size = BpeFiles(
        output.vocabulary_file_by_name(byte_bpe_text.VOCAB_ASSET),
        output.vocabulary_file_by_name(byte_bpe_text.MERGES_ASSET),
    ).vocab_size()
    model = build_gpt2_causal_lm(
        config.train.preset, vocab_size, init_from=config.train.init_from
    )
    logits = model.predict(ids_and_mask(reference), verbose=0)
    assert np.abs(logits - reference["logits"]).max() <= TOLERANCE


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model_type": "bert"}, "model_type='bert'"),
        ({"activation_function": "relu"}, "activation_function='relu'"),
        ({"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon=1e-06"),
        (
            {"scale_attn_by_inverse_layer_idx": True},
            "scale_attn_by_inverse_layer_idx=True",
        ),
        ({"n_inner": 128}, "h.0.mlp.c_fc.weight' .* has shape"),
        ({"n_layer": 3}, "'h.2.ln_1.weight' is missing"),
    ],
)
def test_unsupported_or_mismatched_config_is_refused(
    hf_reference, tmp_path, changes, message
):
    checkpoint = copy_checkpoint(hf_reference, tmp_path, changes)
    with pytest.raises(ValueError, match=message):
        convert_gpt2(str(checkpoint), str(tmp_path / "out"))


def test_untied_lm_head_is_refused(hf_reference, tmp_path):
    checkpoint = copy_checkpoint(hf_reference, tmp_path)
    weights = load_file(checkpoint / "model.safetensors")
    weights["lm_head.weight"] = weights["wte.weight"] + 1.0
    save_file(
        weights, checkpoint / "model.safetensors", metadata={"format": "pt"}
    )
    with pytest.raises(ValueError, match="lm_head.weight .* differs"):
        convert_gpt2(str(checkpoint), str(tmp_path / "out"))


def test_cli_converts_and_reports_errors(hf_reference, tmp_path, capsys):
    out_dir = str(tmp_path / "preset")
    hf_dir = str(hf_reference / "h5")
    assert textmill_main(["convert", "gpt2", hf_dir, out_dir]) == 0
    assert capsys.readouterr().out.strip() == out_dir
    assert os.path.isfile(os.path.join(out_dir, "vocab.json"))
    missing = str(tmp_path / "missing")
    assert textmill_main(["convert", "gpt2", missing, out_dir]) == 1
    assert "does not exist" in capsys.readouterr().err
