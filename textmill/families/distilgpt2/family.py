"""The `distilgpt2` family: GPT-2 causal LMs on packed documents."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

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
from textmill.config import PipelineConfig
from textmill.families import preset_config
from textmill.families.base import Family, TrainingRun
from textmill.families.distilgpt2.export import (
    CausalLMServing,
    export_causal_lm,
)
from textmill.features import INPUT_IDS_FEATURE
from textmill.serving.model_formats import preset_model_path
from textmill.serving.model_metadata import read_model_metadata
from textmill.serving.saved_model_scoring import (
    SavedModelLogits,
    windows_nll,
)
from textmill.tokenization.bpe_files import BpeFiles
from textmill.trainer.data import (
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
from textmill.transform.byte_bpe_text import (  # noqa: F401  (Transform's entry)
    MERGES_ASSET,
    VOCAB_ASSET,
    preprocessing_fn,
)

EOS_TOKEN = "<|endoftext|>"


def gpt2_preset(preset: str) -> dict:
    """A copy of a GPT-2 architecture preset's config.

    Raises:
        ValueError: `preset` is not a GPT-2 preset.
    """
    return preset_config(
        preset,
        {},
        {name: {"config": config} for name, config in GPT2_PRESETS.items()},
        "GPT-2",
    )


@dataclasses.dataclass(frozen=True)
class CausalLMPlan:
    """The vocabulary a causal LM trains with.

    Args:
        vocab: Transform's BPE files.
        vocab_size: tokens in `vocab`.
        eos_id: end-of-text id (document separator and stop token).
    """

    vocab: BpeFiles
    vocab_size: int
    eos_id: int


class CausalLMFamily(Family[CausalLMPlan]):
    """GPT-2 causal LMs on packed documents (see `causal_lm_dataset`).

    Subclasses change the rows (`dataset_fn`) and the exported signatures
    (`serving_class`).
    """

    dataset_fn: DatasetFactory = staticmethod(causal_lm_dataset)
    serving_class: type[CausalLMServing] | None = None

    def transform_config(self, config: PipelineConfig) -> dict:
        """Transform's custom_config: the vocabulary to learn or import."""
        preset = gpt2_preset(config.train.preset)
        return self.vocabulary_config(config, preset["vocabulary_size"])

    def plan(self, run: TrainingRun) -> CausalLMPlan:
        vocab = BpeFiles(
            run.tft_output.vocabulary_file_by_name(VOCAB_ASSET),
            run.tft_output.vocabulary_file_by_name(MERGES_ASSET),
        )
        return CausalLMPlan(
            vocab, vocab.vocab_size(), vocab.token_id(EOS_TOKEN)
        )

    def dataset(
        self,
        run: TrainingRun,
        plan: CausalLMPlan,
        files: Sequence[str],
        *,
        repeat: bool,
    ) -> tf.data.Dataset:
        return self.dataset_fn(
            files,
            data_accessor=run.fn_args.data_accessor,
            schema=run.schema,
            batch_size=run.hparams.batch_size,
            sequence_length=run.hparams.sequence_length,
            bos_id=plan.eos_id,
            repeat=repeat,
            seed=run.hparams.seed,
        )

    def build_model(self, run: TrainingRun, plan: CausalLMPlan) -> keras.Model:
        """The GPT-2 causal LM; with `train.distill_from`, wrapped so that
        its frozen teacher trains it (see `trainer.distillation`)."""
        return with_teacher(
            build_gpt2_causal_lm(
                run.hparams.preset,
                plan.vocab_size,
                init_from=run.hparams.init_from,
            ),
            run.hparams,
        )

    def export(
        self, run: TrainingRun, plan: CausalLMPlan, model: keras.Model
    ) -> dict:
        """The serving and bare-network SavedModels and a keras-hub preset
        to fine-tune from (of the student alone when distilled)."""
        model = student_of(model)
        sequence_length = min(
            run.hparams.sequence_length, model.backbone.max_sequence_length
        )
        export_causal_lm(
            model,
            run.tft_output,
            run.serving_model_dir,
            run.network_dir,
            sequence_length,
            plan.eos_id,
            self.serving_class,
        )
        save_gpt2_preset(model, plan.vocab, preset_model_path(run.model_uri))
        return {
            "vocabulary_size": plan.vocab_size,
            "eos_id": plan.eos_id,
            "sequence_length": sequence_length,
            "precision_policy": model.dtype_policy.name,
            **distillation_metadata(run.hparams),
        }

    def evaluate(self, model_dir: str, examples, max_units: int) -> dict:
        """Eval perplexity on packed windows, as the Trainer packs them."""
        logits, windows = _windows(model_dir, examples, max_units)
        return _perplexity(windows_nll(logits, windows))

    def baseline(self, model_dir: str, examples, max_units: int) -> dict:
        """A smoothed unigram model of the train split's tokens (end-of-text
        included, as packed), scored on the windows `evaluate` scores."""
        metadata = read_model_metadata(model_dir)
        eos_id = metadata["eos_id"]
        windows = load_eval_windows(
            examples, metadata["sequence_length"], eos_id, max_units
        )
        log_probs = unigram_log_probs(
            token_counts(
                examples,
                metadata["vocabulary_size"],
                INPUT_IDS_FEATURE,
                per_record=(eos_id,),
            )
        )
        return {"name": "unigram", **_perplexity(-log_probs[windows[:, 1:]])}

    def teacher(self, model_dir: str, examples, max_units: int) -> dict:
        """A distilled student's teacher scored on the windows `evaluate`
        scores ({} for a model trained without a teacher)."""
        metadata = read_model_metadata(model_dir)
        distilled = metadata.get("distilled_from")
        if not distilled:
            return {}
        windows = load_eval_windows(
            examples, metadata["sequence_length"], metadata["eos_id"], max_units
        )
        preset_dir = distilled["teacher_preset"]
        return {
            "preset_dir": preset_dir,
            **_perplexity(windows_nll(preset_logits_fn(preset_dir), windows)),
        }

    def parity_inputs(self, model_dir: str, examples, count: int) -> list:
        """Inputs of the bare network for TFLite parity: eval windows."""
        _, windows = _windows(model_dir, examples, count)
        return [
            {"token_ids": w[np.newaxis, :-1].astype(np.int32)} for w in windows
        ]


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
