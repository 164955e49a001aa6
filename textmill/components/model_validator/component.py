"""ModelValidator: blesses a model that is good enough to push."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from textmill.components.model_validator import executor
from textmill.features import (
    BASELINE_MODEL_KEY,
    BLESSING_KEY,
    CONFIDENCE_KEY,
    EXAMPLES_KEY,
    MAX_EVAL_WINDOWS_KEY,
    MAX_PERPLEXITY_KEY,
    MAX_REGRESSION_KEY,
    MIN_ACCURACY_KEY,
    MIN_BASELINE_GAIN_KEY,
    MIN_ROUGE_L_KEY,
    MODEL_KEY,
)


class ModelValidatorSpec(component_spec.ComponentSpec):
    """Inputs, outputs and parameters of ModelValidator."""

    PARAMETERS = {
        MAX_PERPLEXITY_KEY: component_spec.ExecutionParameter(type=float),
        MIN_ACCURACY_KEY: component_spec.ExecutionParameter(type=float),
        MIN_ROUGE_L_KEY: component_spec.ExecutionParameter(
            type=float, optional=True
        ),
        MAX_REGRESSION_KEY: component_spec.ExecutionParameter(type=float),
        MIN_BASELINE_GAIN_KEY: component_spec.ExecutionParameter(
            type=float, optional=True
        ),
        CONFIDENCE_KEY: component_spec.ExecutionParameter(type=float),
        MAX_EVAL_WINDOWS_KEY: component_spec.ExecutionParameter(type=int),
    }
    INPUTS = {
        EXAMPLES_KEY: component_spec.ChannelParameter(
            type=standard_artifacts.Examples
        ),
        MODEL_KEY: component_spec.ChannelParameter(
            type=standard_artifacts.Model
        ),
        BASELINE_MODEL_KEY: component_spec.ChannelParameter(
            type=standard_artifacts.Model, optional=True
        ),
    }
    OUTPUTS = {
        BLESSING_KEY: component_spec.ChannelParameter(
            type=standard_artifacts.ModelBlessing
        ),
    }


class ModelValidator(base_component.BaseComponent):
    """Scores a model on the eval split and blesses it or not.

    The model family computes its eval metrics (perplexity for language
    models, accuracy for classifiers, ROUGE for summaries) through the
    exported SavedModel, and the metrics of a trivial baseline (a unigram
    model, the most frequent token, the majority class, Lead-1) on the same
    eval units. The candidate is blessed when it meets the absolute limits,
    beats the baseline on the family's baseline metric by
    `min_baseline_gain` (relative) with a bootstrap interval above 0, and is
    not worse than the last blessed model (re-scored on the same units) by
    more than `max_regression` with confidence: only when the whole
    `confidence` interval of the paired bootstrap lies below
    -max_regression is it refused, so noise does not flap the gate. The
    verdict, its reason and a per-metric table go to `evaluation.json` in
    the blessing and to its custom properties.

    Args:
        examples: transformed Examples with `train` and `eval` splits.
        model: the candidate Model.
        baseline_model: the last blessed Model (optional).
        max_perplexity: absolute ceiling on perplexity (> 1).
        min_accuracy: absolute floor on accuracy (0 to 1).
        min_rouge_l: absolute floor on ROUGE-L F1 (0 to 1).
        max_regression: allowed relative regression (>= 0).
        max_eval_windows: eval batches (windows, pairs) scored; 0 = all.
        min_baseline_gain: relative gain over the trivial baseline the
            candidate needs (>= 0).
        confidence: level of the bootstrap intervals, in (0, 1).
    """

    SPEC_CLASS = ModelValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        examples: channel.BaseChannel,
        model: channel.BaseChannel,
        baseline_model: channel.BaseChannel | None = None,
        max_perplexity: float = 1e4,
        min_accuracy: float = 0.0,
        min_rouge_l: float = 0.0,
        max_regression: float = 0.05,
        max_eval_windows: int = 200,
        min_baseline_gain: float | None = 0.05,
        confidence: float = 0.95,
    ):
        if max_perplexity <= 1:
            raise ValueError(
                f"max_perplexity must be > 1, got {max_perplexity}."
            )
        for name, value in (
            ("min_accuracy", min_accuracy),
            ("min_rouge_l", min_rouge_l),
        ):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}.")
        if max_regression < 0:
            raise ValueError(
                f"max_regression must be >= 0, got {max_regression}."
            )
        if min_baseline_gain is not None and min_baseline_gain < 0:
            raise ValueError(
                f"min_baseline_gain must be >= 0, got {min_baseline_gain}."
            )
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}.")
        if max_eval_windows < 0:
            raise ValueError(
                f"max_eval_windows must be >= 0, got {max_eval_windows}."
            )
        super().__init__(
            spec=ModelValidatorSpec(
                examples=examples,
                model=model,
                baseline_model=baseline_model,
                blessing=types.Channel(type=standard_artifacts.ModelBlessing),
                max_perplexity=float(max_perplexity),
                min_accuracy=float(min_accuracy),
                min_rouge_l=float(min_rouge_l),
                max_regression=float(max_regression),
                max_eval_windows=int(max_eval_windows),
                min_baseline_gain=None
                if min_baseline_gain is None
                else float(min_baseline_gain),
                confidence=float(confidence),
            )
        )
