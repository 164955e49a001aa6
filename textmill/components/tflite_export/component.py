"""TFLiteExport: TFLite variants of a model, parity-checked."""

from __future__ import annotations

import json

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from textmill.components.tflite_export import executor
from textmill.features import (
    EXAMPLES_KEY,
    MODEL_KEY,
    PARITY_WINDOWS_KEY,
    TFLITE_MODEL_KEY,
    VARIANTS_KEY,
)
from textmill.serving.tflite_conversion import VARIANTS


class TFLiteModel(types.Artifact):
    """TFLite flatbuffers of one model, with `metadata.json` beside them."""

    TYPE_NAME = "textmill.TFLiteModel"


class TFLiteExportSpec(component_spec.ComponentSpec):
    """Inputs, outputs and parameters of TFLiteExport."""

    PARAMETERS = {
        VARIANTS_KEY: component_spec.ExecutionParameter(type=str),
        PARITY_WINDOWS_KEY: component_spec.ExecutionParameter(type=int),
    }
    INPUTS = {
        MODEL_KEY: component_spec.ChannelParameter(
            type=standard_artifacts.Model
        ),
        EXAMPLES_KEY: component_spec.ChannelParameter(
            type=standard_artifacts.Examples
        ),
    }
    OUTPUTS = {
        TFLITE_MODEL_KEY: component_spec.ChannelParameter(type=TFLiteModel)
    }


class TFLiteExport(base_component.BaseComponent):
    """Converts a model's `logits_from_ids` graph to TFLite variants.

    Each variant is compared with the SavedModel on eval windows; the
    largest logit difference and the top-1 agreement are written to
    `metadata.json` beside the `.tflite` files.

    Args:
        model: the trained Model.
        examples: transformed Examples with an `eval` split.
        variants: any of "float32", "int8", "float16".
        parity_windows: eval windows compared per variant.
    """

    SPEC_CLASS = TFLiteExportSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        model: channel.BaseChannel,
        examples: channel.BaseChannel,
        variants: tuple[str, ...] = ("float32", "int8"),
        parity_windows: int = 16,
    ):
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown or not variants:
            raise ValueError(
                f"variants={list(variants)!r}: choose one or more of "
                f"{', '.join(VARIANTS)}."
            )
        if parity_windows < 1:
            raise ValueError(
                f"parity_windows must be >= 1, got {parity_windows}."
            )
        super().__init__(
            spec=TFLiteExportSpec(
                model=model,
                examples=examples,
                tflite_model=types.Channel(type=TFLiteModel),
                variants=json.dumps(list(variants)),
                parity_windows=parity_windows,
            )
        )
