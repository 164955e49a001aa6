"""Writing an Examples artifact from Beam: the part every example executor
shares.

An executor that writes tf.Examples (TextExampleGen, SentencePairGen)
subclasses `ExamplesExecutor` and supplies, as an `ExamplesPlan`, its own
stages, which end in `WriteSplit` per split and give tallies (counts towards
its report), and a transform that sums the tallies into a report dict. The
shared `Do` runs them in one Beam pipeline, writes the report JSON beside
the splits and records on the artifact what TFX's readers need (payload and
file format, span). Every example is serialized deterministically, so the
same records give the same bytes in every worker process.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import apache_beam as beam
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from textmill.atomic_write import write_atomically

# File and payload formats, as TFX's ExampleGen records them so that
# StatisticsGen, Transform and the Trainer's TFXIO can read the examples.
FILE_FORMAT = "tfrecords_gzip"
TFRECORD_PREFIX = "data_tfrecord"

Record = TypeVar("Record")
Tally = TypeVar("Tally")


def counter(
    namespace: str, name: str
) -> beam.metrics.metric.Metrics.DelegatingCounter:
    """The Beam counter `name` in the executor's metrics `namespace`."""
    return beam.metrics.Metrics.counter(namespace, name)


def serialize_example(features: Mapping[str, str | int]) -> bytes:
    """A tf.Example of one value per feature, serialized deterministically.

    Args:
        features: feature name -> value; a `str` becomes a bytes feature
            (UTF-8), an `int` an int64 feature.

    Returns:
        The serialized example; equal features give equal bytes, whatever
        the process (map fields are written in key order).

    Raises:
        TypeError: a value is neither `str` nor `int`.
    """
    feature = {}
    for name, value in features.items():
        if isinstance(value, str):
            feature[name] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[value.encode("utf-8")])
            )
        elif isinstance(value, int):
            feature[name] = tf.train.Feature(
                int64_list=tf.train.Int64List(value=[value])
            )
        else:
            raise TypeError(
                f"feature {name!r} = {value!r} is a {type(value).__name__}; "
                "pass a str (bytes feature) or an int (int64 feature)."
            )
    return tf.train.Example(
        features=tf.train.Features(feature=feature)
    ).SerializeToString(deterministic=True)


def _to_example(
    record: Record, to_features: Callable[[Record], Mapping[str, str | int]]
) -> bytes:
    return serialize_example(to_features(record))


@beam.ptransform_fn
def WriteSplit(
    records: beam.PCollection[Record],
    split: str,
    uri: str,
    to_features: Callable[[Record], Mapping[str, str | int]],
    tally: Callable[[Record, str], Tally],
) -> beam.PCollection[Tally]:
    """Writes one split as gzipped TFRecords of tf.Examples.

    Args:
        records: the split's records.
        split: the split's name.
        uri: the split's directory, `{artifact.uri}/Split-{split}`.
        to_features: a record's example features (see `serialize_example`).
        tally: `tally(record, split)`, a record's count towards the report.

    Returns:
        One tally per written record.
    """
    _ = (
        records
        | "ToExample" >> beam.Map(_to_example, to_features)
        | "Write"
        >> beam.io.WriteToTFRecord(
            os.path.join(uri, TFRECORD_PREFIX), file_name_suffix=".gz"
        )
    )
    return records | "Tally" >> beam.Map(tally, split)


def _write_json(report: dict[str, Any], path: str) -> None:
    write_atomically(path, json.dumps(report, indent=2).encode("utf-8"))


@beam.ptransform_fn
def WriteReport(
    tallies: beam.PCollection[Tally],
    summarize: beam.PTransform,
    path: str,
) -> beam.PCollection[None]:
    """Sums the tallies into the report and writes its JSON atomically.

    Args:
        tallies: every count of every stage.
        summarize: tallies -> a single report dict.
        path: the report file.

    Returns:
        One `None`, once the report is written.
    """
    return tallies | "Sum" >> summarize | "Write" >> beam.Map(_write_json, path)


@dataclasses.dataclass(frozen=True)
class ExamplesPlan:
    """What an example executor writes, and how.

    Args:
        examples: the output Examples artifact.
        splits: its split names; split `s` goes to
            `artifact_utils.get_split_uri([examples], s)`.
        stages: adds the executor's stages to a Beam pipeline, each split
            written with `WriteSplit`; returns their tallies.
        summarize: tallies -> the report dict (see `WriteReport`).
        report_filename: the report's name, at the root of the artifact's
            directory beside the Split-* directories (TFX readers only look
            inside those).
        span: the artifact's span.
    """

    examples: types.Artifact
    splits: Sequence[str]
    stages: Callable[[beam.Pipeline], Sequence[beam.PCollection[Any]]]
    summarize: beam.PTransform
    report_filename: str
    span: int


class ExamplesExecutor(base_beam_executor.BaseBeamExecutor):
    """A Beam executor that writes one Examples artifact and a report.

    `Do` is the same for every such executor: it asks the subclass for its
    `plan`, runs the plan's stages and report in one Beam pipeline, records
    on the artifact what TFX's readers need (payload and file format, span)
    and hands the report to the subclass's `record_report`.
    """

    @abc.abstractmethod
    def plan(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> ExamplesPlan:
        """What to write, from the component's inputs and parameters."""

    @abc.abstractmethod
    def record_report(
        self, report: dict[str, Any], examples: types.Artifact
    ) -> None:
        """Logs the written report and copies its totals to `examples`."""

    def explain_failure(self, error: Exception) -> None:
        """Called with what the Beam pipeline raised; may raise a clearer
        error in its place (by default the error is raised as it is)."""
        del error

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Runs the plan's pipeline and records what it wrote.

        Args:
            input_dict: the component's input artifacts.
            output_dict: the component's output artifacts.
            exec_properties: the component's parameters.

        Raises:
            Exception: what `plan` raises, and what the pipeline raises, or
                `explain_failure` in its place.
        """
        plan = self.plan(input_dict, output_dict, exec_properties)
        examples = plan.examples
        examples.split_names = artifact_utils.encode_split_names(
            list(plan.splits)
        )
        report_path = os.path.join(examples.uri, plan.report_filename)
        try:
            with self._make_beam_pipeline() as pipeline:
                _ = (
                    plan.stages(pipeline)
                    | "FlattenTallies" >> beam.Flatten()
                    | "WriteReport" >> WriteReport(plan.summarize, report_path)
                )
        except Exception as error:
            self.explain_failure(error)
            raise
        examples_utils.set_payload_format(
            examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE
        )
        examples_utils.set_file_format(examples, FILE_FORMAT)
        examples.span = plan.span
        with FileSystems.open(report_path) as f:
            self.record_report(json.load(f), examples)
