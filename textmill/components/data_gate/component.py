"""DataGate: stops the run before training when the data is not sound.

ExampleValidator records anomalies but lets the pipeline go on; this gate
fails the run instead, naming every anomaly, and also refuses an empty
split (which ExampleValidator does not flag).
"""

# No `from __future__ import annotations` here: the @component decorator
# reads the real annotation objects.
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

_ANOMALIES_FILE = "SchemaDiff.pb"
_STATISTICS_FILE = "FeatureStats.pb"


class DataAnomalyError(RuntimeError):
    """The data failed validation; the message lists what and where."""


def _split_problems(statistics, anomalies, split: str) -> list[str]:
    problems = []
    stats_list = statistics_pb2.DatasetFeatureStatisticsList()
    stats_list.ParseFromString(
        io_utils.read_bytes_file(
            os.path.join(
                artifact_utils.get_split_uri([statistics], split),
                _STATISTICS_FILE,
            )
        )
    )
    if not stats_list.datasets or stats_list.datasets[0].num_examples == 0:
        problems.append(f"split {split!r} has no examples")
    path = os.path.join(
        artifact_utils.get_split_uri([anomalies], split), _ANOMALIES_FILE
    )
    if tf.io.gfile.exists(path):
        found = anomalies_pb2.Anomalies()
        found.ParseFromString(io_utils.read_bytes_file(path))
        for feature, info in sorted(found.anomaly_info.items()):
            problems.append(
                f"split {split!r}, feature {feature!r}: "
                f"{info.short_description} ({info.description})"
            )
        if found.HasField("dataset_anomaly_info"):
            info = found.dataset_anomaly_info
            problems.append(f"split {split!r}: {info.description}")
    return problems


def check_data(statistics, anomalies) -> None:
    """Raises DataAnomalyError listing every problem of every split."""
    problems = []
    for split in artifact_utils.decode_split_names(statistics.split_names):
        problems += _split_problems(statistics, anomalies, split)
    if problems:
        raise DataAnomalyError(
            "The data failed validation, so training was not started:\n  - "
            + "\n  - ".join(problems)
            + "\nFix the input data (see the ingest report for what was "
            "skipped) or the schema, then run again."
        )


@tfx.dsl.components.component
def DataGate(
    statistics: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleStatistics
    ],
    anomalies: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleAnomalies
    ],
) -> None:
    """Fails the run when the statistics or anomalies show a problem."""
    check_data(statistics, anomalies)
