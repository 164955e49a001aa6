"""ServingPusher executor: atomic pushes into SERVING_DIR/NAME/VERSION/."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from typing import Any

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from textmill import features

TFLITE_SUBDIR = "tflite"
# Which Model artifact a version came from, so pushing it twice is a no-op.
PUSH_RECORD = os.path.join("assets.extra", "textmill_push.json")
_SAVED_MODEL_PB = "saved_model.pb"


def existing_versions(model_root: str) -> list[int]:
    """Numeric version directories already under `model_root`."""
    if not tf.io.gfile.isdir(model_root):
        return []
    return sorted(
        int(name.rstrip("/"))
        for name in tf.io.gfile.listdir(model_root)
        if name.rstrip("/").isdigit()
    )


def next_version(model_root: str) -> int:
    """Seconds since the epoch, or one more than the newest version."""
    versions = existing_versions(model_root)
    return max([int(time.time())] + [v + 1 for v in versions])


def _is_local(path: str) -> bool:
    return "://" not in path


def _copy_tree(src: str, dst: str, skip: tuple[str, ...] = ()) -> None:
    for dirpath, _, filenames in tf.io.gfile.walk(src):
        rel = os.path.relpath(dirpath, src)
        for filename in filenames:
            if rel == "." and filename in skip:
                continue
            target = os.path.normpath(os.path.join(dst, rel, filename))
            tf.io.gfile.makedirs(os.path.dirname(target))
            tf.io.gfile.copy(os.path.join(dirpath, filename), target)


def serving_version_of(model_root: str, source: str) -> str | None:
    """The newest version directory pushed from Model `source`, if any."""
    for version in reversed(existing_versions(model_root)):
        record = os.path.join(model_root, str(version), PUSH_RECORD)
        if tf.io.gfile.exists(record):
            with tf.io.gfile.GFile(record) as f:
                if json.load(f).get("source") == source:
                    return os.path.join(model_root, str(version))
    return None


def _write_record(version_dir: str, source: str | None) -> None:
    path = os.path.join(version_dir, PUSH_RECORD)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump({"source": source}, f)


def push_version(
    model_dir: str,
    model_root: str,
    version: int,
    tflite_dir: str | None = None,
    source: str | None = None,
) -> str:
    """Copies a SavedModel (+ TFLite files) to `model_root/version/`.

    Returns:
        The final version directory.

    Raises:
        FileExistsError: the version directory already exists.
    """
    final = os.path.join(model_root, str(version))
    if tf.io.gfile.exists(final):
        raise FileExistsError(f"{final} already exists; refusing to overwrite.")
    if _is_local(model_root):
        staging = os.path.join(
            model_root, f".incoming-{version}-{uuid.uuid4().hex}"
        )
        _copy_tree(model_dir, staging)
        _write_record(staging, source)
        if tflite_dir:
            _copy_tree(tflite_dir, os.path.join(staging, TFLITE_SUBDIR))
        os.rename(staging, final)
    else:
        if tflite_dir:
            _copy_tree(tflite_dir, os.path.join(final, TFLITE_SUBDIR))
        _copy_tree(model_dir, final, skip=(_SAVED_MODEL_PB,))
        _write_record(final, source)
        tf.io.gfile.copy(
            os.path.join(model_dir, _SAVED_MODEL_PB),
            os.path.join(final, _SAVED_MODEL_PB),
        )
    return final


class Executor(base_executor.BaseExecutor):
    """Pushes when blessed; records the outcome on the PushedModel."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        model = artifact_utils.get_single_instance(
            input_dict[features.MODEL_KEY]
        )
        blessing = artifact_utils.get_single_instance(
            input_dict[features.MODEL_BLESSING_KEY]
        )
        tflite = input_dict.get(features.TFLITE_MODEL_KEY) or []
        pushed = artifact_utils.get_single_instance(
            output_dict[features.PUSHED_MODEL_KEY]
        )

        if blessing.get_int_custom_property("blessed") != 1:
            reason = blessing.get_string_custom_property("reason")
            logging.warning(
                "Model %s not pushed: not blessed (%s)", model.uri, reason
            )
            pushed.set_int_custom_property("pushed", 0)
            pushed.set_string_custom_property("reason", reason)
            io_utils.write_string_file(
                os.path.join(pushed.uri, "NOT_PUSHED"), reason
            )
            return

        model_root = os.path.join(
            exec_properties[features.SERVING_DIR_KEY],
            exec_properties[features.MODEL_NAME_KEY],
        )
        tf.io.gfile.makedirs(model_root)
        final = serving_version_of(model_root, model.uri)
        if final:
            logging.info(
                "Model %s is already served from %s; not pushed " "again",
                model.uri,
                final,
            )
        else:
            final = push_version(
                path_utils.serving_model_path(model.uri),
                model_root,
                next_version(model_root),
                tflite[0].uri if tflite else None,
                source=model.uri,
            )
            logging.info("Pushed %s to %s", model.uri, final)
        pushed.set_int_custom_property("pushed", 1)
        pushed.set_string_custom_property("pushed_destination", final)
        pushed.set_int_custom_property(
            "pushed_version", int(os.path.basename(final))
        )
        io_utils.write_string_file(os.path.join(pushed.uri, "PUSHED"), final)
