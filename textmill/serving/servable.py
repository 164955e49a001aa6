"""One loaded version of a served model."""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the tokenizer ops models use
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_pb2,
    prediction_log_pb2,
)

from textmill.serving.serving_error import ServingError
from textmill.serving.signatures import SERVING_DEFAULT

SAVED_MODEL_PB = "saved_model.pb"
# TF Serving's warm-up file: a TFRecord of PredictionLog protos, replayed
# when a version loads.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000
logger = logging.getLogger(__name__)


def _first_line(message: str) -> str:
    """The first line of a TensorFlow error, without its node names."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line.split("\t [[")[0].split(" [[")[0].strip()[:500]


def proto_json(message) -> dict:
    """A proto as TF Serving prints it: default fields included."""
    return json_format.MessageToDict(
        message,
        including_default_value_fields=True,
        preserving_proto_field_name=True,
    )


def _signature_def_map(path: str) -> get_model_metadata_pb2.SignatureDefMap:
    pb_path = os.path.join(path, SAVED_MODEL_PB)
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(pb_path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if tf.saved_model.SERVING in meta_graph.meta_info_def.tags:
            break
    else:
        raise ValueError(
            f"{pb_path} has no meta graph tagged "
            f"'{tf.saved_model.SERVING}'; export the model with "
            "tf.saved_model.save (or keras `model.export`)."
        )
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in meta_graph.signature_def.items():
        signature_defs.signature_def[name].CopyFrom(signature_def)
    return signature_defs


def _warm_up_inputs(specs: dict) -> dict | None:
    """One small example for inputs in metadata JSON form, or None when an
    input is neither a string nor a number."""
    inputs = {}
    for name, info in specs.items():
        dtype = tf.dtypes.as_dtype(types_pb2.DataType.Value(info["dtype"]))
        if dtype == tf.string:
            value = "warm up"
        elif dtype.is_integer or dtype.is_floating:
            value = 1
        else:
            return None
        dims = info.get("tensor_shape", {}).get("dim", [])
        shape = [1 if int(d["size"]) < 0 else int(d["size"]) for d in dims]
        inputs[name] = tf.fill(shape, tf.constant(value, dtype))
    return inputs


class Servable:
    """A SavedModel version loaded for serving, with its signatures.

    Signatures are read from the SavedModel itself: `signature_defs` holds
    each one in TF Serving's metadata JSON form, which is what the REST
    codec checks requests against.

    Args:
        name: the model name (the directory under the serving dir).
        version: the version number (the directory under the model).
        path: the version directory, local or `gs://`.

    Example:

    >>> servable = Servable("lm", 3, "/srv/models/lm/3")
    >>> servable.run("serving_default", {"text": np.array([b"hi"], object)})
    """

    def __init__(self, name: str, version: int, path: str):
        self.name = name
        self.version = version
        self.path = path
        self._signature_def_map = _signature_def_map(path)
        self.signature_defs = proto_json(self._signature_def_map)[
            "signature_def"
        ]
        self._model = tf.saved_model.load(path, tags=[tf.saved_model.SERVING])
        self._functions = dict(self._model.signatures)

    @property
    def signature_names(self) -> list[str]:
        """The signatures that can be called."""
        return sorted(self._functions)

    def signature(self, signature_name: str) -> dict:
        """One callable signature in metadata JSON form.

        Raises:
            ServingError: 400 naming the available signatures.
        """
        if signature_name not in self._functions:
            raise ServingError(
                400,
                f"model '{self.name}' version {self.version} has no "
                f"signature '{signature_name}'; available: "
                f"{', '.join(self.signature_names)}.",
            )
        return self.signature_defs[signature_name]

    def metadata(self) -> dict:
        """TF Serving's GetModelMetadata response (the signature_def map)."""
        spec = model_pb2.ModelSpec(name=self.name)
        spec.version.value = self.version
        return {
            "model_spec": proto_json(spec),
            "metadata": {"signature_def": proto_json(self._signature_def_map)},
        }

    def warm_up(self) -> int:
        """Calls the signatures once so that first requests do not stall.

        With TF Serving's `assets.extra/tf_serving_warmup_requests` (written
        by the ServingPusher), its predict requests are replayed (at most
        1000); without it, every signature whose inputs are all strings and
        numbers is called once with one short example (`"warm up"`, 1 for
        integers, 1.0 for floats). A signature that rejects that made-up
        example (e.g. one that parses serialized `tf.Example`s) is logged
        and left cold; only the warm-up file's own requests must succeed.

        Returns:
            The number of calls made.

        Raises:
            ValueError: a warm-up request names a missing signature.
            tf.errors.OpError: the model failed on a warm-up request.
        """
        path = os.path.join(self.path, WARMUP_FILE)
        if tf.io.gfile.exists(path):
            calls = 0
            for record in tf.data.TFRecordDataset(path).take(
                MAX_WARMUP_RECORDS
            ):
                log = prediction_log_pb2.PredictionLog.FromString(
                    record.numpy()
                )
                request = log.predict_log.request
                name = request.model_spec.signature_name or SERVING_DEFAULT
                if name not in self._functions:
                    raise ValueError(
                        f"{WARMUP_FILE} calls signature '{name}', which "
                        f"the model lacks; it has {self.signature_names}."
                    )
                self._functions[name](
                    **{
                        key: tf.constant(tf.make_ndarray(value))
                        for key, value in request.inputs.items()
                    }
                )
                calls += 1
            return calls
        calls = 0
        for name in self.signature_names:
            inputs = _warm_up_inputs(self.signature_defs[name]["inputs"])
            if inputs is None:
                continue
            try:
                self._functions[name](**inputs)
            except (tf.errors.OpError, ValueError, TypeError) as error:
                logger.info(
                    "Signature %s not warmed up: it rejects the made-up "
                    "example (%s)",
                    name,
                    type(error).__name__,
                )
                continue
            calls += 1
        return calls

    def run(
        self, signature_name: str, inputs: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Calls a signature on checked inputs.

        Args:
            signature_name: a callable signature.
            inputs: input name -> array of the input's dtype and shape.

        Returns:
            output name -> array.

        Raises:
            ServingError: 400 when the model rejects the values (an
                InvalidArgument error), 500 on any other model failure.
        """
        specs = self.signature(signature_name)["inputs"]
        tensors = {
            name: tf.constant(
                value,
                dtype=tf.dtypes.as_dtype(
                    types_pb2.DataType.Value(specs[name]["dtype"])
                ),
            )
            for name, value in inputs.items()
        }
        try:
            outputs = self._functions[signature_name](**tensors)
        except tf.errors.InvalidArgumentError as e:
            # The model's own check of a value; the graph's node names and
            # stack after the first line are for the log only.
            raise ServingError(400, _first_line(e.message)) from None
        except tf.errors.OpError as e:
            logger.error(
                "Model %s version %s failed in signature %s: %s",
                self.name,
                self.version,
                signature_name,
                e.message,
            )
            raise ServingError(
                500,
                f"model '{self.name}' version {self.version} failed in "
                f"signature '{signature_name}'; see the server log.",
            ) from None
        return {name: value.numpy() for name, value in outputs.items()}
