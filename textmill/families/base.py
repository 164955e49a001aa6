"""The contract every model family fills in.

A family is one subclass of `Family` in `textmill/families/<name>/`. The
pipeline asks it for Transform's custom_config (and, for sentence pairs,
the packed length); the Trainer's one template,
`textmill.trainer.training.train`, owns the flow and calls its steps in
order:

    plan(run)                         what Transform's output fixes
    dataset(run, plan, files, ...)    train, then eval batches
    build_model(run, plan)            inside the strategy's scope
    export(run, plan, model)          serving + bare-network SavedModels

then writes the model metadata the family returned. The validator and the
TFLite exporter call `evaluate`, `baseline` and `parity_inputs` on the
exported model. Every hook is a typed method, so an IDE and a type checker
follow each call to the family that answers it.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import textmill
from textmill.serving.model_formats import network_model_path

if TYPE_CHECKING:
    import keras
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    from textmill.config import PipelineConfig, TrainConfig
    from textmill.families import FamilySpec

PlanT = TypeVar("PlanT")


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """What one Trainer run hands a family's training steps.

    Args:
        fn_args: the TFX Trainer's FnArgs (files, data accessor, dirs).
        hparams: the run's TrainConfig (TrainArgs/EvalArgs applied).
        tft_output: the Transform output the examples were made with.
    """

    fn_args: Any
    hparams: TrainConfig
    tft_output: tft.TFTransformOutput

    @property
    def serving_model_dir(self) -> str:
        """Where the serving SavedModel goes (`MODEL_URI/Format-Serving`)."""
        return self.fn_args.serving_model_dir

    @property
    def model_uri(self) -> str:
        """The Model artifact's directory."""
        return os.path.dirname(self.fn_args.serving_model_dir)

    @property
    def network_dir(self) -> str:
        """Where the bare network that TFLite converts goes."""
        return network_model_path(self.model_uri)

    @property
    def schema(self):
        """The transformed examples' schema."""
        return self.tft_output.transformed_metadata.schema


class Family(abc.ABC, Generic[PlanT]):
    """One model family: the steps the pipeline, the Trainer's template,
    the validator and the TFLite exporter call.

    `PlanT` is what `plan` learns from Transform's output (vocabulary,
    special ids, lengths) and the later training steps read.

    Args:
        spec: the family's registry entry (name, gate metric, presets).
    """

    def __init__(self, spec: FamilySpec):
        self.spec = spec

    # Pipeline.

    @abc.abstractmethod
    def transform_config(self, config: PipelineConfig) -> dict:
        """Transform's custom_config for the family's `preprocessing_fn`.

        Raises:
            ValueError: `config.train.preset` is not one of the family's.
        """

    @staticmethod
    def vocabulary_config(config: PipelineConfig, default_size: int) -> dict:
        """The custom_config entries every family's Transform reads: the
        vocabulary to learn (`tokenizer.vocab_size`, else `default_size`)
        or import, and the textmill version (a new version reruns
        Transform)."""
        return {
            "vocab_size": config.tokenizer.vocab_size or default_size,
            "min_frequency": config.tokenizer.min_frequency,
            # A distilled student speaks its teacher's tokens.
            "init_from": config.tokenizer.init_from
            or config.train.init_from
            or config.train.distill_from,
            "textmill_version": textmill.__version__,
        }

    def sequence_length(self, config: PipelineConfig) -> int:
        """The model's input length for `config` (the packed pair length
        of sentence-pair families); `train.sequence_length` unless the
        family bounds it."""
        return config.train.sequence_length

    # Trainer, in the order `textmill.trainer.training.train` calls them.

    @abc.abstractmethod
    def plan(self, run: TrainingRun) -> PlanT:
        """What the rest of training needs from Transform's output; called
        after devices and seeds are set up."""

    @abc.abstractmethod
    def dataset(
        self,
        run: TrainingRun,
        plan: PlanT,
        files: Sequence[str],
        *,
        repeat: bool,
    ) -> tf.data.Dataset:
        """Batches of `(inputs, labels[, sample_weight])` from transformed
        example files: shuffled and endless when `repeat` (training), in
        order and once otherwise (eval)."""

    @abc.abstractmethod
    def build_model(self, run: TrainingRun, plan: PlanT) -> keras.Model:
        """The untrained (or `init_from`-initialised) model, which outputs
        logits; called inside the strategy's scope."""

    @abc.abstractmethod
    def export(
        self, run: TrainingRun, plan: PlanT, model: keras.Model
    ) -> dict[str, Any]:
        """Writes the serving SavedModel to `run.serving_model_dir` and the
        bare network to `run.network_dir`.

        Returns:
            The family's entries of the model metadata (the template adds
            `family`, `preset` and `train_steps`).
        """

    # Validator and TFLite exporter, on an exported model.

    @abc.abstractmethod
    def evaluate(
        self, model_dir: str, examples, max_units: int
    ) -> dict[str, Any]:
        """The model's eval metrics on the first `max_units` (0 = all) eval
        units of a transformed Examples artifact, with per-unit samples
        (see components/model_validator/gate.py)."""

    @abc.abstractmethod
    def baseline(
        self, model_dir: str, examples, max_units: int
    ) -> dict[str, Any]:
        """A trivial model's metrics on the units `evaluate` scores, with a
        `name` and per-unit samples."""

    @abc.abstractmethod
    def parity_inputs(
        self, model_dir: str, examples, count: int
    ) -> list[dict[str, np.ndarray]]:
        """Up to `count` eval inputs of the bare network, for TFLite
        parity."""

    def teacher(self, model_dir: str, examples, max_units: int) -> dict:
        """A distilled model's teacher scored on the units `evaluate`
        scores, with per-unit samples; {} for a model trained without a
        teacher (every family but distilgpt2)."""
        return {}
