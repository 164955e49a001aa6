"""Tiny random GPT-2 causal LMs, their generators and exported models."""

import functools
import os
import shutil
import types

import keras
import keras_hub
import pytest
import tensorflow as tf

from textmill.serving.sampling import CausalLMGenerator
from textmill.serving.sampling.generation_signatures import GenerationSignatures
from textmill.serving.sampling.token_id_generation import (
    INPUT_SPECS,
    generate_token_ids,
)
from textmill.serving.signatures import GENERATE_IDS
from textmill.tokenization.bpe_files import train_byte_bpe
from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer

VOCAB = 97
MAX_LENGTH = 64


@pytest.fixture(scope="session")
def model():
    keras.utils.set_random_seed(7)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        dropout=0.0,
        max_sequence_length=MAX_LENGTH,
    )
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


@pytest.fixture(scope="session")
def generator(model):
    return CausalLMGenerator(model, jit_compile=True)


TEXT_MAX_LENGTH = 40
EOS = "<|endoftext|>"
TEXTS = [
    "The river runs to the sea, and the sea returns it as rain.",
    "Return the path of the module; raise an error if it is missing.",
    "Numbers 12, 345 and 6789 are tokens too.",
] * 20


@pytest.fixture(scope="session")
def text_lm(tmp_path_factory):
    """A model with a real tokenizer, exported as the pipeline does: a
    serving SavedModel (string signatures) and a bare-network SavedModel
    (`generate_ids`, tokenizer files in `assets.extra`)."""
    files = train_byte_bpe(TEXTS, 320, str(tmp_path_factory.mktemp("bpe")))
    tokenizer = ByteBPETokenizer(files.vocab_path, files.merges_path)
    eos = files.token_id(EOS)
    keras.utils.set_random_seed(11)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=files.vocab_size(),
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        dropout=0.0,
        max_sequence_length=TEXT_MAX_LENGTH,
    )
    model = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    generator = CausalLMGenerator(model, jit_compile=True)

    def prompt_ids(prompt, max_new_tokens):
        ids = tf.cast(tokenizer.tokenize(prompt), tf.int32)
        keep = TEXT_MAX_LENGTH - 1 - max_new_tokens
        lengths = ids.row_lengths()
        start = lengths - tf.cast(keep, lengths.dtype)
        ids = tf.ragged.boolean_mask(
            ids, tf.ragged.range(lengths) >= start[:, None]
        )
        bos = tf.fill([ids.nrows(), 1], eos)
        return tf.concat([bos, ids], axis=1)

    serving_dir = str(tmp_path_factory.mktemp("serving"))
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(tokenizer)
    GenerationSignatures(
        generator,
        prompt_ids,
        tokenizer.detokenize,
        stop_token_id=eos,
        vocabulary_size=files.vocab_size(),
    ).add_endpoints(archive)
    archive.write_out(serving_dir, verbose=False)

    network_dir = str(tmp_path_factory.mktemp("network"))
    network = keras.export.ExportArchive()
    network.track(model)
    network.add_endpoint(
        GENERATE_IDS,
        functools.partial(
            generate_token_ids,
            model,
            bos_id=eos,
            stop_token_id=eos,
            max_length=TEXT_MAX_LENGTH,
        ),
        INPUT_SPECS,
    )
    network.write_out(network_dir, verbose=False)
    os.makedirs(os.path.join(network_dir, "assets.extra"))
    for path in (files.vocab_path, files.merges_path):
        shutil.copy(path, os.path.join(network_dir, "assets.extra"))
    return types.SimpleNamespace(
        files=files,
        tokenizer=tokenizer,
        eos=eos,
        model=model,
        generator=generator,
        prompt_ids=prompt_ids,
        serving=tf.saved_model.load(serving_dir),
        network_dir=network_dir,
    )
