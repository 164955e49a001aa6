import os

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx.types import artifact_utils, standard_artifacts

from textmill.components.data_gate.component import (
    DataAnomalyError,
    check_data,
)


def _artifacts(tmp_path, examples_per_split, anomalies_per_split):
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(tmp_path / "stats")
    statistics.split_names = artifact_utils.encode_split_names(
        list(examples_per_split)
    )
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "anomalies")
    anomalies.split_names = statistics.split_names
    for split, count in examples_per_split.items():
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        stats.datasets.add(num_examples=count)
        path = os.path.join(statistics.uri, f"Split-{split}")
        os.makedirs(path)
        with open(os.path.join(path, "FeatureStats.pb"), "wb") as f:
            f.write(stats.SerializeToString())
        found = anomalies_pb2.Anomalies()
        for feature, text in anomalies_per_split.get(split, {}).items():
            info = found.anomaly_info[feature]
            info.short_description = text
            info.description = f"{text} in detail"
        path = os.path.join(anomalies.uri, f"Split-{split}")
        os.makedirs(path)
        with open(os.path.join(path, "SchemaDiff.pb"), "wb") as f:
            f.write(found.SerializeToString())
    return statistics, anomalies


def test_clean_data_passes(tmp_path):
    check_data(*_artifacts(tmp_path, {"train": 10, "eval": 2}, {}))


def test_anomaly_and_empty_split_are_both_named(tmp_path):
    statistics, anomalies = _artifacts(
        tmp_path,
        {"train": 10, "eval": 0},
        {"train": {"text": "Column dropped"}},
    )
    with pytest.raises(DataAnomalyError) as error:
        check_data(statistics, anomalies)
    message = str(error.value)
    assert "split 'eval' has no examples" in message
    assert "split 'train', feature 'text': Column dropped" in message
