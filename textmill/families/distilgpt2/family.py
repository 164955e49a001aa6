"""The `distilgpt2` family: GPT-2 causal LMs on packed documents."""

from __future__ import annotations

import os
import time

import numpy as np
import tensorflow_transform as tft

import textmill
from textmill.components.eval_windows import load_eval_windows
from textmill.components.model_validator.baselines import (
    token_counts,
    unigram_log_probs,
)
from textmill.components.model_validator.gate import (
    SAMPLES_KEY,
    metric_value,
    samples,
)
from textmill.families.distilgpt2.export import (
    CausalLMServing,
    export_causal_lm,
)
from textmill.pipelines.config import PipelineConfig
from textmill.serving.model_formats import (
    network_model_path,
    preset_model_path,
)
from textmill.serving.model_metadata import (
    read_model_metadata,
    write_model_metadata,
)
from textmill.serving.saved_model_scoring import (
    SavedModelLogits,
    windows_nll,
)
from textmill.tokenization.bpe_files import BpeFiles
from textmill.trainer import training
from textmill.trainer.data import (
    TOKEN_IDS_FEATURE,
    DatasetFactory,
    causal_lm_dataset,
)
from textmill.trainer.distillation import (
    distillation_metadata,
    preset_logits_fn,
    student_of,
    with_teacher,
)
from textmill.trainer.models.gpt2 import (
    GPT2_PRESETS,
    build_gpt2_causal_lm,
    save_gpt2_preset,
)
from textmill.trainer.throughput import write_throughput
from textmill.transform.byte_bpe_text import (  # noqa: F401  (Transform's entry)
    MERGES_ASSET,
    VOCAB_ASSET,
    preprocessing_fn,
)

EOS_TOKEN = "<|endoftext|>"


def transform_config(config: PipelineConfig) -> dict:
    """Transform's custom_config: the vocabulary to learn or import."""
    preset = GPT2_PRESETS.get(config.train.preset, GPT2_PRESETS["tiny"])
    return {
        "vocab_size": config.tokenizer.vocab_size or preset["vocabulary_size"],
        "min_frequency": config.tokenizer.min_frequency,
        # A distilled student speaks its teacher's tokens.
        "init_from": config.tokenizer.init_from
        or config.train.init_from
        or config.train.distill_from,
        "textmill_version": textmill.__version__,
    }


def train(fn_args) -> None:
    """Trains and exports a GPT-2 family causal LM on packed documents."""
    train_causal_lm(fn_args, causal_lm_dataset)


def train_causal_lm(
    fn_args,
    dataset_fn: DatasetFactory,
    serving_class: type[CausalLMServing] | None = None,
) -> None:
    """Trains a GPT-2 family causal LM on `dataset_fn`'s batches and
    exports it with `serving_class` (see `export_causal_lm`).

    Args:
        fn_args: the TFX Trainer's FnArgs.
        dataset_fn: `causal_lm_dataset` or another factory with its
            arguments; its batches may carry sample weights.
        serving_class: the exported signatures' class (None: the causal
            LM's).
    """
    hparams = training.train_config(fn_args)
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    vocab = BpeFiles(
        tft_output.vocabulary_file_by_name(VOCAB_ASSET),
        tft_output.vocabulary_file_by_name(MERGES_ASSET),
    )
    vocab_size = vocab.vocab_size()
    eos_id = vocab.token_id(EOS_TOKEN)
    strategy = training.set_up_devices(hparams)

    datasets = {
        split: dataset_fn(
            files,
            data_accessor=fn_args.data_accessor,
            schema=tft_output.transformed_metadata.schema,
            batch_size=hparams.batch_size,
            sequence_length=hparams.sequence_length,
            bos_id=eos_id,
            repeat=split == "train",
            seed=hparams.seed,
        )
        for split, files in (
            ("train", fn_args.train_files),
            ("eval", fn_args.eval_files),
        )
    }
    started = time.monotonic()
    model = training.compile_and_fit(
        lambda: with_teacher(
            build_gpt2_causal_lm(
                hparams.preset, vocab_size, init_from=hparams.init_from
            ),
            hparams,
        ),
        datasets["train"],
        datasets["eval"],
        hparams,
        fn_args,
        strategy,
    )
    if model is None:
        return
    write_throughput(fn_args.model_run_dir, hparams, time.monotonic() - started)
    model = student_of(model)
    sequence_length = min(
        hparams.sequence_length, model.backbone.max_sequence_length
    )
    model_uri = os.path.dirname(fn_args.serving_model_dir)
    export_causal_lm(
        model,
        tft_output,
        fn_args.serving_model_dir,
        network_model_path(model_uri),
        sequence_length,
        eos_id,
        serving_class,
    )
    save_gpt2_preset(model, vocab, preset_model_path(model_uri))
    write_model_metadata(
        fn_args.serving_model_dir,
        {
            "family": fn_args.custom_config["family"],
            "preset": hparams.preset,
            "vocabulary_size": vocab_size,
            "eos_id": eos_id,
            "sequence_length": sequence_length,
            "train_steps": hparams.train_steps,
            "precision_policy": model.dtype_policy.name,
            **distillation_metadata(hparams),
        },
    )


def _windows(model_dir: str, examples, count: int):
    metadata = read_model_metadata(model_dir)
    logits = SavedModelLogits(model_dir)
    windows = load_eval_windows(
        examples, logits.sequence_length, metadata["eos_id"], count
    )
    return logits, windows


def _perplexity(nll: np.ndarray) -> dict:
    """Perplexity of per-token NLL [windows, tokens], with per-window
    samples for the gate's bootstrap."""
    numerator, denominator = nll.sum(axis=1), np.full(len(nll), nll.shape[1])
    return {
        "perplexity": metric_value("perplexity", numerator, denominator),
        "windows": len(nll),
        "tokens": int(nll.size),
        SAMPLES_KEY: samples("perplexity", numerator, denominator),
    }


def evaluate(model_dir: str, examples, max_batches: int) -> dict:
    """Eval perplexity on packed windows, as the Trainer packs them."""
    logits, windows = _windows(model_dir, examples, max_batches)
    return _perplexity(windows_nll(logits, windows))


def baseline(model_dir: str, examples, max_batches: int) -> dict:
    """A smoothed unigram model of the train split's tokens (end-of-text
    included, as packed), scored on the windows `evaluate` scores."""
    metadata = read_model_metadata(model_dir)
    eos_id = metadata["eos_id"]
    windows = load_eval_windows(
        examples, metadata["sequence_length"], eos_id, max_batches
    )
    log_probs = unigram_log_probs(
        token_counts(
            examples,
            metadata["vocabulary_size"],
            TOKEN_IDS_FEATURE,
            per_record=(eos_id,),
        )
    )
    return {"name": "unigram", **_perplexity(-log_probs[windows[:, 1:]])}


def teacher(model_dir: str, examples, max_batches: int) -> dict:
    """A distilled student's teacher scored on the windows `evaluate`
    scores ({} for a model trained without a teacher)."""
    metadata = read_model_metadata(model_dir)
    distilled = metadata.get("distilled_from")
    if not distilled:
        return {}
    windows = load_eval_windows(
        examples, metadata["sequence_length"], metadata["eos_id"], max_batches
    )
    preset_dir = distilled["teacher_preset"]
    return {
        "preset_dir": preset_dir,
        **_perplexity(windows_nll(preset_logits_fn(preset_dir), windows)),
    }


def parity_inputs(model_dir: str, examples, count: int) -> list[dict]:
    """Inputs of the bare network for TFLite parity: eval windows."""
    _, windows = _windows(model_dir, examples, count)
    return [{"token_ids": w[np.newaxis, :-1].astype(np.int32)} for w in windows]
