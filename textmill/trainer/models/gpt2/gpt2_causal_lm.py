"""Builds GPT-2 family causal LMs (DistilGPT2 and friends) on keras-hub."""

from __future__ import annotations

import logging

import keras_hub

from textmill.tokenization.bpe_files import BpeFiles, export_hf_bpe
from textmill.trainer.models.gpt2.gpt2_presets import GPT2_PRESETS


def build_gpt2_causal_lm(
    preset: str,
    vocabulary_size: int,
    init_from: str | None = None,
) -> keras_hub.models.GPT2CausalLM:
    """Returns a GPT-2 causal LM without a preprocessor (ids in, logits out).

    Args:
        preset: a key of GPT2_PRESETS (architecture only).
        vocabulary_size: size of the vocabulary the Transform step uses.
        init_from: a keras-hub preset directory (e.g. written by
            `textmill convert gpt2`); its weights and architecture win over
            `preset`.

    Returns:
        An unbuilt-by-data `GPT2CausalLM` whose inputs are `token_ids` and
        `padding_mask`.

    Raises:
        ValueError: unknown preset, or a checkpoint whose vocabulary does not
            match the tokenizer's.
    """
    if init_from:
        logging.info("Initialising GPT-2 from preset directory %s", init_from)
        backbone = keras_hub.models.GPT2Backbone.from_preset(init_from)
        if backbone.vocabulary_size != vocabulary_size:
            raise ValueError(
                f"init_from={init_from!r} has a vocabulary of "
                f"{backbone.vocabulary_size} tokens but the tokenizer has "
                f"{vocabulary_size}: import the tokenizer from the same "
                "checkpoint (tokenizer.init_from)."
            )
    else:
        if preset not in GPT2_PRESETS:
            raise ValueError(
                f"preset={preset!r} is not a GPT-2 preset; choose one of "
                f"{', '.join(GPT2_PRESETS)}."
            )
        config = dict(GPT2_PRESETS[preset], vocabulary_size=vocabulary_size)
        backbone = keras_hub.models.GPT2Backbone(**config)
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def gpt2_preprocessor(
    vocab: BpeFiles, sequence_length: int
) -> keras_hub.models.GPT2CausalLMPreprocessor:
    """keras-hub's GPT-2 preprocessor over a byte-level BPE vocabulary.

    Args:
        vocab: the vocabulary (it must hold `<|endoftext|>`).
        sequence_length: the preprocessor's sequence length.
    """
    tokenizer = keras_hub.models.GPT2Tokenizer(
        vocabulary={token: i for i, token in enumerate(vocab.read_vocab())},
        merges=[f"{left} {right}" for left, right in vocab.read_merges()],
    )
    return keras_hub.models.GPT2CausalLMPreprocessor(
        tokenizer=tokenizer, sequence_length=sequence_length
    )


def save_gpt2_preset(
    model: keras_hub.models.GPT2CausalLM, vocab: BpeFiles, preset_dir: str
) -> None:
    """Writes a trained model as a preset another run fine-tunes from.

    The directory holds the backbone's keras-hub preset, keras-hub's
    GPT-2 preprocessor (so `keras_hub.models.GPT2CausalLM.from_preset`
    loads a model that generates from text) and the vocabulary as Hugging
    Face `vocab.json` + `merges.txt`, the layout `textmill convert gpt2`
    writes: `--init-from preset_dir` initialises both the tokenizer and
    the model from it.

    Args:
        model: the trained causal LM.
        vocab: the vocabulary it was trained with.
        preset_dir: directory to write (local or gs://).
    """
    model.backbone.save_to_preset(preset_dir)
    gpt2_preprocessor(vocab, model.backbone.max_sequence_length).save_to_preset(
        preset_dir
    )
    export_hf_bpe(vocab, preset_dir)
