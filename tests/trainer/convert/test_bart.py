"""Parity with Hugging Face's BART through `convert_bart`, and fine-tuning
the converted checkpoint in the translation family.

`bart_hf_reference.py` trains a byte-level BPE with BART's special tokens
on the embedded corpus (the standard library's docstrings), builds a random
`TFBartForConditionalGeneration` over it in a separate process (the TF
classes of `transformers` need legacy Keras), saves it as `tf_model.h5` and
as a PyTorch-named `model.safetensors`, and dumps its logits and greedy
continuations. Here both checkpoints are converted and our model's logits
and greedy tokens are compared with Hugging Face's.
"""

import json
import os
import random

import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file, save_file
from tfx.types import artifact_utils

from tests.families.harness import (
    harness_config,
    train_family,
    transform_examples,
)
from tests.hf_reference_script import (
    copy_checkpoint,
    run_hf_reference_script,
)
from textmill.config import with_overrides
from textmill.corpus.default_corpus import write_default_corpus
from textmill.families import load_family
from textmill.families.base import TrainingRun
from textmill.families.distilgpt2.family import CausalLMPlan
from textmill.features import (
    DECODER_PADDING_MASK_FEATURE,
    DECODER_TOKEN_IDS_FEATURE,
    ENCODER_PADDING_MASK_FEATURE,
    ENCODER_TOKEN_IDS_FEATURE,
)
from textmill.pipelines.cli import main as textmill_main
from textmill.serving.model_metadata import read_model_metadata
from textmill.serving.sampling.seq2seq_generator import Seq2SeqGenerator
from textmill.trainer.convert.bart import convert_bart

pytest.importorskip("transformers")

HF_SCRIPT = os.path.join(os.path.dirname(__file__), "bart_hf_reference.py")
NUM_DOCUMENTS = 50
FORMATS = ("h5", "safetensors")
TOLERANCE = 1e-4
# BART's decoder start and end token, `</s>`.
START = 2


@pytest.fixture(scope="module")
def hf_reference(tmp_path_factory):
    """Directory of the HF checkpoints, tokenizer and `reference.npz`."""
    path = write_default_corpus(
        str(tmp_path_factory.mktemp("corpus")), max_documents=NUM_DOCUMENTS
    )
    out_dir = tmp_path_factory.mktemp("hf_reference")
    run_hf_reference_script(HF_SCRIPT, path, str(out_dir))
    return out_dir


@pytest.fixture(scope="module")
def reference(hf_reference):
    return dict(np.load(hf_reference / "reference.npz"))


@pytest.fixture(scope="module")
def presets(hf_reference, tmp_path_factory) -> dict[str, str]:
    """Each checkpoint format converted once."""
    return {
        fmt: convert_bart(
            str(hf_reference / fmt), str(tmp_path_factory.mktemp(fmt))
        )
        for fmt in FORMATS
    }


def load(preset: str) -> keras_hub.models.BartSeq2SeqLM:
    return keras_hub.models.BartSeq2SeqLM.from_preset(preset, preprocessor=None)


@pytest.mark.parametrize("fmt", FORMATS)
def test_logits_match_hf(presets, reference, fmt):
    """The whole forward pass: right-padded sources of unequal lengths,
    the decoder fed `</s>` and target tokens."""
    model = load(presets[fmt])
    assert model.backbone.max_sequence_length == 64
    decoder_ids = reference["decoder_ids"]
    logits = model.predict(
        {
            ENCODER_TOKEN_IDS_FEATURE: reference["source_ids"],
            ENCODER_PADDING_MASK_FEATURE: reference["source_mask"],
            DECODER_TOKEN_IDS_FEATURE: decoder_ids,
            DECODER_PADDING_MASK_FEATURE: np.ones_like(decoder_ids),
        },
        verbose=0,
    )
    assert logits.dtype == np.float32
    assert np.abs(logits - reference["logits"]).max() <= TOLERANCE


def test_greedy_tokens_match_hf(presets, reference):
    """HF's `generate` and ours (the `translate` signatures' loop, and
    keras-hub's `generate`) pick the same tokens for sources of unequal
    lengths in one batch."""
    continuations = reference["continuations"]
    rows, new_tokens = continuations.shape
    # Random weights that decode one token over and over would prove
    # little.
    assert all(len(set(row)) > 1 for row in continuations.tolist())
    source_ids, source_mask = reference["greedy_ids"], reference["greedy_mask"]
    model = load(presets["safetensors"])

    ours = Seq2SeqGenerator(model, START, 64).greedy(
        source_ids, source_mask.sum(axis=1), new_tokens, stop_token_id=-1
    )
    np.testing.assert_array_equal(
        ours.token_ids.numpy()[:, 1 : 1 + new_tokens], continuations
    )

    model.compile(sampler="greedy")
    prompt = np.zeros((rows, 1 + new_tokens), np.int32)
    prompt[:, 0] = START
    prompt_mask = np.zeros_like(prompt)
    prompt_mask[:, 0] = 1
    generated = model.generate(
        {
            ENCODER_TOKEN_IDS_FEATURE: source_ids,
            ENCODER_PADDING_MASK_FEATURE: source_mask,
            DECODER_TOKEN_IDS_FEATURE: prompt,
            DECODER_PADDING_MASK_FEATURE: prompt_mask,
        },
        stop_token_ids=None,
    )[DECODER_TOKEN_IDS_FEATURE]
    np.testing.assert_array_equal(generated[:, 1:], continuations)


def test_preset_holds_tokenizer_files(hf_reference, presets):
    preset = presets["h5"]
    for name in ("vocab.json", "merges.txt"):
        assert (hf_reference / "tokenizer" / name).read_bytes() == (
            open(os.path.join(preset, name), "rb").read()
        )
    model = keras_hub.models.BartSeq2SeqLM.from_preset(preset)
    assert isinstance(
        model.preprocessor, keras_hub.models.BartSeq2SeqLMPreprocessor
    )
    assert (
        model.preprocessor.tokenizer.vocabulary_size()
        == model.backbone.vocabulary_size
    )


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model_type": "mbart"}, "model_type='mbart'"),
        ({"activation_function": "relu"}, "activation_function='relu'"),
        ({"scale_embedding": True}, "scale_embedding=True"),
        ({"decoder_layers": 3}, "encoder_layers=2 but decoder_layers=3"),
        ({"encoder_ffn_dim": 256, "decoder_ffn_dim": 256}, "fc1.weight' .*"),
        ({"max_position_embeddings": 32}, "embed_positions.weight' .* shape"),
    ],
)
def test_unsupported_or_mismatched_config_is_refused(
    hf_reference, tmp_path, changes, message
):
    checkpoint = copy_checkpoint(hf_reference, tmp_path, changes)
    with pytest.raises(ValueError, match=message):
        convert_bart(str(checkpoint), str(tmp_path / "out"))


@pytest.mark.parametrize(
    "name, message",
    [
        ("lm_head.weight", "lm_head.weight .* differs"),
        ("final_logits_bias", "final_logits_bias .* is not zero"),
    ],
)
def test_untied_head_or_logits_bias_is_refused(
    hf_reference, tmp_path, name, message
):
    checkpoint = copy_checkpoint(hf_reference, tmp_path)
    weights = load_file(checkpoint / "model.safetensors")
    weights[name] = weights[name] + 1.0
    save_file(
        weights, checkpoint / "model.safetensors", metadata={"format": "pt"}
    )
    with pytest.raises(ValueError, match=message):
        convert_bart(str(checkpoint), str(tmp_path / "out"))


def test_cli_converts_and_reports_errors(hf_reference, tmp_path, capsys):
    out_dir = str(tmp_path / "preset")
    hf_dir = str(hf_reference / "h5")
    assert textmill_main(["convert", "bart", hf_dir, out_dir]) == 0
    assert capsys.readouterr().out.strip() == out_dir
    assert isinstance(load(out_dir), keras_hub.models.BartSeq2SeqLM)
    missing = str(tmp_path / "missing")
    assert textmill_main(["convert", "bart", missing, out_dir]) == 1
    assert "does not exist" in capsys.readouterr().err


def _pairs(count: int, seed: int) -> list[dict]:
    """(source, target) sentence pairs: the target is the source's words
    reversed."""
    rng = random.Random(seed)
    words = "river stone lantern orchard harbor meadow signal copper".split()
    rows = []
    for _ in range(count):
        source = [rng.choice(words) for _ in range(rng.randint(3, 8))]
        rows.append(
            {"text": " ".join(source), "target": " ".join(source[::-1])}
        )
    return rows


@pytest.mark.slow
def test_translation_fine_tunes_a_converted_checkpoint(
    presets, hf_reference, tmp_path
):
    """`--init-from` a converted BART: Transform imports its vocabulary
    (targets end with `</s>`), the model starts from its weights, and a
    few steps train and export a model that translates."""
    preset = presets["h5"]
    config = with_overrides(
        harness_config("translation"), train={"init_from": preset}
    )
    text = tf.io.FixedLenFeature([], tf.string)
    transformed = transform_examples(
        str(tmp_path),
        config,
        {"text": text, "target": text},
        {"train": _pairs(16, seed=0), "eval": _pairs(4, seed=1)},
    )
    eval_dir = artifact_utils.get_split_uri([transformed.examples], "eval")
    (path,) = tf.io.gfile.glob(os.path.join(eval_dir, "*.gz"))
    record = next(iter(tf.data.TFRecordDataset(path, compression_type="GZIP")))
    example = tf.train.Example.FromString(record.numpy())
    target_ids = example.features.feature["target_ids"].int64_list.value
    assert target_ids[-1] == START
    with open(hf_reference / "tokenizer" / "vocab.json") as f:
        vocabulary_size = len(json.load(f))

    family = load_family("translation")
    plan = CausalLMPlan(None, vocabulary_size, START)
    run = TrainingRun(None, config.train, None)
    started = family.build_model(run, plan)
    for ours, theirs in zip(started.weights, load(preset).weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())

    model_uri = train_family(str(tmp_path), transformed, eval_units=4)
    model_dir = os.path.join(model_uri, "Format-Serving")
    metadata = read_model_metadata(model_dir)
    assert metadata["vocabulary_size"] == vocabulary_size
    assert metadata["eos_id"] == START
    metrics = family.evaluate(model_dir, transformed.examples, 4)
    assert metrics["examples"] == 4
    assert 0.0 <= metrics["chrf"] <= 1.0

    wrong = CausalLMPlan(None, vocabulary_size + 1, START)
    with pytest.raises(ValueError, match="vocabulary of 1000 tokens"):
        family.build_model(run, wrong)


def test_init_from_a_directory_without_a_bart_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"class_name": "GPT2Backbone", "config": {}})
    )
    config = with_overrides(
        harness_config("translation"), train={"init_from": str(tmp_path)}
    )
    with pytest.raises(ValueError, match="not a BartBackbone"):
        load_family("translation").transform_config(config)
