"""ModelValidator: blesses a model that is good enough to push."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from textmill.components.model_validator import executor

EXAMPLES_KEY = "examples"
MODEL_KEY = "model"
BASELINE_MODEL_KEY = "baseline_model"
BLESSING_KEY = "blessing"
MAX_PERPLEXITY_KEY = "max_perplexity"
MIN_ACCURACY_KEY = "min_accuracy"
MIN_ROUGE_L_KEY = "min_rouge_l"
MAX_REGRESSION_KEY = "max_regression"
MAX_EVAL_WINDOWS_KEY = "max_eval_windows"


class ModelValidatorSpec(component_spec.ComponentSpec):
    """Inputs, outputs and parameters of ModelValidator."""

    PARAMETERS = {
        MAX_PERPLEXITY_KEY: component_spec.ExecutionParameter(type=float),
        MIN_ACCURACY_KEY: component_spec.ExecutionParameter(type=float),
        MIN_ROUGE_L_KEY: component_spec.ExecutionParameter(
            type=float, optional=True
        ),
        MAX_REGRESSION_KEY: component_spec.ExecutionParameter(type=float),
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
    models, accuracy for classifiers) through the exported SavedModel.
    Perplexity must be under `max_perplexity`, accuracy at least
    `min_accuracy`, and the family's gate metric no worse than the baseline
    (the last blessed model, when there is one) by more than
    `max_regression` (a fraction).
    The baseline is re-scored on the same windows, so the comparison is fair
    even when the data changed. The verdict, its reason and both scores go
    to `evaluation.json` in the blessing and to its custom properties.

    Args:
        examples: transformed Examples with an `eval` split.
        model: the candidate Model.
        baseline_model: the last blessed Model (optional).
        max_perplexity: absolute ceiling on perplexity (> 1).
        min_accuracy: absolute floor on accuracy (0 to 1).
        min_rouge_l: absolute floor on ROUGE-L F1 (0 to 1).
        max_regression: allowed relative regression (>= 0).
        max_eval_windows: eval batches (windows, pairs) scored; 0 = all.
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
            )
        )
