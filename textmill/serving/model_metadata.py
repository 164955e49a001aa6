"""textmill's description of an exported model, kept inside the SavedModel.

It lives in `assets.extra/textmill.json`, the SavedModel directory meant for
extra files: TF Serving ignores it, the validator, TFLite exporter and
server read it.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

METADATA_PATH = os.path.join("assets.extra", "textmill.json")


def write_model_metadata(export_dir: str, metadata: dict) -> None:
    """Writes `metadata` as JSON into the SavedModel at `export_dir`."""
    path = os.path.join(export_dir, METADATA_PATH)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(metadata, f, indent=2, sort_keys=True)


def read_model_metadata(export_dir: str) -> dict:
    """Reads the metadata written by `write_model_metadata`.

    Raises:
        FileNotFoundError: `export_dir` is not a textmill SavedModel.
    """
    path = os.path.join(export_dir, METADATA_PATH)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{path} not found: {export_dir} is not a SavedModel exported by "
            "textmill (re-export it with `textmill run`)."
        )
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
