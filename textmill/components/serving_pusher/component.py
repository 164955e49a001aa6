"""ServingPusher: pushes a blessed model into the TF Serving layout."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from textmill.components.serving_pusher import executor
from textmill.components.tflite_export.component import TFLiteModel
from textmill.features import (
    MODEL_BLESSING_KEY,
    MODEL_KEY,
    MODEL_NAME_KEY,
    PUSHED_MODEL_KEY,
    SERVING_DIR_KEY,
    TFLITE_MODEL_KEY,
)


class ServingPusherSpec(component_spec.ComponentSpec):
    """Inputs, outputs and parameters of ServingPusher."""

    PARAMETERS = {
        SERVING_DIR_KEY: component_spec.ExecutionParameter(type=str),
        MODEL_NAME_KEY: component_spec.ExecutionParameter(type=str),
    }
    INPUTS = {
        MODEL_KEY: component_spec.ChannelParameter(
            type=standard_artifacts.Model
        ),
        MODEL_BLESSING_KEY: component_spec.ChannelParameter(
            type=standard_artifacts.ModelBlessing
        ),
        TFLITE_MODEL_KEY: component_spec.ChannelParameter(
            type=TFLiteModel, optional=True
        ),
    }
    OUTPUTS = {
        PUSHED_MODEL_KEY: component_spec.ChannelParameter(
            type=standard_artifacts.PushedModel
        ),
    }


class ServingPusher(base_component.BaseComponent):
    """Pushes a blessed SavedModel (and its TFLite files) atomically.

    The model lands in `serving_dir/model_name/VERSION/` (TF Serving's
    layout; VERSION grows with every push) with the TFLite variants and
    their metadata in `VERSION/tflite/`. Locally the version directory is
    assembled under a hidden name and renamed into place, so a server never
    sees half a model; on object stores (gs://), where directories cannot be
    renamed, `saved_model.pb` is written last, as TF Serving loads a version
    only once that file exists. An unblessed model is not pushed.

    Args:
        model: the trained Model.
        model_blessing: the ModelValidator's verdict.
        serving_dir: base directory that serving watches.
        model_name: the model's name under `serving_dir`.
        tflite_model: TFLite variants to ship beside the SavedModel.
    """

    SPEC_CLASS = ServingPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        model: channel.BaseChannel,
        model_blessing: channel.BaseChannel,
        serving_dir: str,
        model_name: str,
        tflite_model: channel.BaseChannel | None = None,
    ):
        if not serving_dir:
            raise ValueError("serving_dir is empty: pass --serving-dir DIR.")
        if not model_name or "/" in model_name:
            raise ValueError(
                f"model_name={model_name!r} must be a non-empty name without "
                "'/'."
            )
        super().__init__(
            spec=ServingPusherSpec(
                model=model,
                model_blessing=model_blessing,
                tflite_model=tflite_model,
                pushed_model=types.Channel(type=standard_artifacts.PushedModel),
                serving_dir=serving_dir,
                model_name=model_name,
            )
        )
