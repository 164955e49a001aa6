"""The exported generation signatures reproduce the Python API."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from textmill.serving.sampling import SamplerSettings
from textmill.serving.sampling.generation_signatures import GENERATE_GREEDY
from textmill.serving.signatures import (
    GENERATE_BEAM,
    GENERATE_CONTRASTIVE,
    GENERATE_SAMPLE,
)

PROMPTS = ["The river", "Return the path of", "Numbers"]
NEW = 6


@pytest.fixture(scope="module")
def exported(text_lm):
    ids = text_lm.prompt_ids(tf.constant(PROMPTS), NEW)
    return (
        text_lm.serving,
        text_lm.generator,
        text_lm.tokenizer,
        text_lm.eos,
        ids,
    )


def python_api(exported, settings):
    _, generator, tokenizer, eos, ids = exported
    dense = ids.to_tensor(0)
    mask = tf.sequence_mask(ids.row_lengths(), tf.shape(dense)[1])
    out = generator(dense, mask, settings)
    return out, tokenizer, eos


def completions(out, tokenizer, eos, beam=None):
    ids, mask = out.token_ids.numpy(), out.generated_mask.numpy()
    if beam is not None:
        ids, mask = ids[:, beam], mask[:, beam]
    texts = []
    for row in range(len(PROMPTS)):
        new = [t for t in ids[row][mask[row]] if t != eos]
        texts.append(
            tokenizer.detokenize(tf.ragged.constant([new], tf.int64)).numpy()[0]
            if new
            else b""
        )
    return texts


CASES = [
    (GENERATE_GREEDY, {}, SamplerSettings(max_new_tokens=NEW)),
    (
        GENERATE_SAMPLE,
        dict(temperature=0.8, top_k=20, top_p=0.9, seed=42),
        SamplerSettings(
            "sample",
            max_new_tokens=NEW,
            temperature=0.8,
            top_k=20,
            top_p=0.9,
            seed=42,
        ),
    ),
    (
        GENERATE_CONTRASTIVE,
        dict(top_k=4, penalty_alpha=0.6),
        SamplerSettings("contrastive", max_new_tokens=NEW, top_k=4),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, inputs, settings", CASES, ids=[c[0] for c in CASES]
)
def test_signature_reproduces_python_api(exported, name, inputs, settings):
    loaded = exported[0]
    dtypes = {
        spec.name: spec.dtype
        for spec in loaded.signatures[name]
        .structured_input_signature[1]
        .values()
    }
    got = loaded.signatures[name](
        prompt=tf.constant(PROMPTS),
        max_new_tokens=tf.constant(NEW),
        **{k: tf.constant(v, dtypes[k]) for k, v in inputs.items()},
    )
    out, tokenizer, eos = python_api(
        exported, dataclasses.replace(settings, stop_token_id=exported[3])
    )
    assert got["completion"].numpy().tolist() == completions(
        out, tokenizer, eos
    )
    np.testing.assert_allclose(
        got["sequence_score"].numpy(), out.sequence_scores.numpy(), atol=1e-5
    )
    assert got["token_scores"].shape == (len(PROMPTS), NEW)
    np.testing.assert_allclose(
        got["token_scores"].numpy().sum(1),
        got["sequence_score"].numpy(),
        atol=1e-5,
    )
    assert (
        got["num_new_tokens"].numpy() == out.generated_mask.numpy().sum(1)
    ).all()


@pytest.mark.slow
def test_beam_signature_returns_every_beam(exported):
    loaded = exported[0]
    got = loaded.signatures[GENERATE_BEAM](
        prompt=tf.constant(PROMPTS),
        max_new_tokens=tf.constant(NEW),
        num_beams=tf.constant(3),
    )
    out, tokenizer, eos = python_api(
        exported,
        SamplerSettings(
            "beam",
            max_new_tokens=NEW,
            num_beams=3,
            return_all_beams=True,
            stop_token_id=exported[3],
        ),
    )
    assert got["beam_completions"].shape == (len(PROMPTS), 3)
    for beam in range(3):
        assert got["beam_completions"].numpy()[:, beam].tolist() == (
            completions(out, tokenizer, eos, beam)
        )
    np.testing.assert_allclose(
        got["beam_scores"].numpy(), out.sequence_scores.numpy(), atol=1e-5
    )
    assert got["completion"].numpy().tolist() == (
        got["beam_completions"].numpy()[:, 0].tolist()
    )


@pytest.mark.slow
def test_bad_knob_fails_the_request_with_its_name(exported):
    error = tf.errors.InvalidArgumentError
    with pytest.raises(error, match="input top_p must be in"):
        exported[0].signatures[GENERATE_SAMPLE](
            prompt=tf.constant(PROMPTS),
            max_new_tokens=tf.constant(NEW),
            temperature=tf.constant(1.0),
            top_k=tf.constant(0),
            top_p=tf.constant(1.5),
            seed=tf.constant(0, tf.int64),
        )
