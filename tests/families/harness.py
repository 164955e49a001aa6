"""A quick run of a family's hooks on canned data, without a pipeline.

`transform_examples` runs the family's real `preprocessing_fn` on a few raw
records in process and writes what TFX's Transform writes (the transform
graph and GZIP `tf.Example` splits); `train_family` then runs the Trainer's
entry point on them for a couple of steps, so the template, the family's
plan, datasets, model and export all run, and the exported model is the
one `evaluate`, `baseline` and `parity_inputs` read.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os

import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import metadata_io
from tfx.components.trainer import fn_args_utils
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from textmill.config import PipelineConfig, with_overrides
from textmill.families import get_family, load_family
from textmill.trainer.run_fn import run_fn

SPLITS = ("train", "eval")
TRAIN_STEPS = 2
VOCAB_SIZE = 400


def harness_config(family: str) -> PipelineConfig:
    """A tiny-preset config of `family`: a small vocabulary, short
    windows, two steps of two rows."""
    return with_overrides(
        PipelineConfig(),
        top={"family": family},
        tokenizer={"vocab_size": VOCAB_SIZE},
        train={
            "preset": "tiny",
            "sequence_length": 64,
            "batch_size": 2,
            "train_steps": TRAIN_STEPS,
            "checkpoint_every": TRAIN_STEPS,
            "eval_steps": 1,
            "warmup_steps": 0,
            "mixed_precision": "off",
        },
    )


@dataclasses.dataclass(frozen=True)
class Transformed:
    """What Transform would have written for a family.

    Args:
        config: the config the custom_config came from.
        examples: the transformed Examples artifact (train and eval).
        transform_graph: the TransformGraph artifact.
    """

    config: PipelineConfig
    examples: standard_artifacts.Examples
    transform_graph: standard_artifacts.TransformGraph


def transform_examples(
    directory: str,
    config: PipelineConfig,
    raw_spec: dict,
    splits: dict[str, list[dict]],
) -> Transformed:
    """Runs the family's `preprocessing_fn`, analysed on the train rows,
    over every split, and writes the artifacts Transform writes.

    Args:
        directory: where the artifacts go.
        config: the run's config; its family gives the preprocessing_fn
            and the custom_config.
        raw_spec: the raw records' feature spec.
        splits: raw records (feature dicts) of "train" and "eval".
    """
    spec = get_family(config.family)
    preprocessing_fn = functools.partial(
        importlib.import_module(spec.module).preprocessing_fn,
        custom_config=load_family(config.family).transform_config(config),
    )
    raw_metadata = tft.DatasetMetadata.from_feature_spec(raw_spec)
    graph_dir = os.path.join(directory, "transform_graph")
    with tft_beam.Context(temp_dir=os.path.join(directory, "tft_tmp")):
        transform_fn = (
            splits["train"],
            raw_metadata,
        ) | tft_beam.AnalyzeDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(graph_dir)
        # The raw metadata, which TFX's Transform writes beside.
        metadata_io.write_metadata(
            raw_metadata,
            os.path.join(graph_dir, tft.TFTransformOutput.RAW_METADATA_DIR),
        )
        rows = {
            split: (
                ((splits[split], raw_metadata), transform_fn)
                | tft_beam.TransformDataset()
            )[0]
            for split in SPLITS
        }
    coder = tft.coders.ExampleProtoCoder(
        tft.TFTransformOutput(graph_dir).transformed_metadata.schema
    )
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(directory, "transformed_examples")
    examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
    for split in SPLITS:
        uri = artifact_utils.get_split_uri([examples], split)
        tf.io.gfile.makedirs(uri)
        path = os.path.join(uri, "transformed_examples-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for row in rows[split]:
                writer.write(coder.encode(row))
    transform_graph = standard_artifacts.TransformGraph()
    transform_graph.uri = graph_dir
    return Transformed(config, examples, transform_graph)


def train_family(
    directory: str, transformed: Transformed, eval_units: int
) -> str:
    """Runs the Trainer's `run_fn` as TFX's Trainer calls it.

    Args:
        directory: where the Model artifact and checkpoints go.
        transformed: `transform_examples`' artifacts.
        eval_units: the validator's eval units, as the pipeline passes.

    Returns:
        The Model artifact's directory (the SavedModel is its
        `Format-Serving`).
    """
    fn_args = fn_args_utils.get_common_fn_args(
        {
            "examples": [transformed.examples],
            "transform_graph": [transformed.transform_graph],
        },
        {
            "train_args": proto_utils.proto_to_json(
                trainer_pb2.TrainArgs(num_steps=TRAIN_STEPS)
            ),
            "eval_args": proto_utils.proto_to_json(
                trainer_pb2.EvalArgs(num_steps=1)
            ),
        },
    )
    config = transformed.config
    model_uri = os.path.join(directory, "model")
    fn_args.custom_config = {
        "family": config.family,
        "train": dataclasses.asdict(config.train),
        "checkpoint_root": os.path.join(directory, "checkpoints"),
        "eval_units": eval_units,
    }
    fn_args.serving_model_dir = os.path.join(model_uri, "Format-Serving")
    fn_args.model_run_dir = os.path.join(directory, "model_run")
    run_fn(fn_args)
    return model_uri
