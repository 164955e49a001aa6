"""Runs textmill's run_fn on a finished pipeline's Transform outputs.

Usage: python trainer_worker.py PIPELINE_ROOT OUT_DIR CONFIG_JSON

Used by the resume test, which kills this process mid-training, and by the
two-worker test, which starts it once per worker with TF_CONFIG set.
"""

import glob
import json
import logging
import os
import sys

from tfx.components.trainer import fn_args_utils
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from textmill.trainer.run_fn import run_fn


def _artifact(cls, pattern, splits=None):
    artifact = cls()
    artifact.uri = sorted(glob.glob(pattern))[-1]
    if splits:
        artifact.split_names = artifact_utils.encode_split_names(splits)
    return artifact


def main(pipeline_root: str, out_dir: str, custom_config: dict) -> None:
    examples = _artifact(
        standard_artifacts.Examples,
        os.path.join(pipeline_root, "Transform/transformed_examples/*"),
        ["train", "eval"],
    )
    input_dict = {
        "examples": [examples],
        "transform_graph": [
            _artifact(
                standard_artifacts.TransformGraph,
                os.path.join(pipeline_root, "Transform/transform_graph/*"),
            )
        ],
        "schema": [
            _artifact(
                standard_artifacts.Schema,
                os.path.join(pipeline_root, "SchemaGen/schema/*"),
            )
        ],
    }
    steps = custom_config["train"]["train_steps"]
    exec_properties = {
        "train_args": proto_utils.proto_to_json(
            trainer_pb2.TrainArgs(num_steps=steps)
        ),
        "eval_args": proto_utils.proto_to_json(
            trainer_pb2.EvalArgs(num_steps=2)
        ),
    }
    fn_args = fn_args_utils.get_common_fn_args(input_dict, exec_properties)
    fn_args.custom_config = custom_config
    fn_args.serving_model_dir = os.path.join(out_dir, "model/Format-Serving")
    fn_args.model_run_dir = os.path.join(out_dir, "model_run")
    run_fn(fn_args)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, force=True)
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
