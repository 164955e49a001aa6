import json

import tensorflow as tf

from textmill.trainer.distribution import (
    _vertex_cluster_spec_to_tf_config,
    choose_strategy,
    cluster_worker_count,
    precision_policy,
)


def test_worker_count_from_tf_config_and_vertex_cluster_spec():
    tf_config = {
        "cluster": {"worker": ["a:1", "b:2"]},
        "task": {"type": "worker", "index": 0},
    }
    assert cluster_worker_count({"TF_CONFIG": json.dumps(tf_config)}) == 2
    vertex = {
        "cluster": {"workerpool0": ["a:1"], "workerpool1": ["b:2", "c:3"]},
        "task": {"type": "workerpool1", "index": 1},
    }
    assert cluster_worker_count({"CLUSTER_SPEC": json.dumps(vertex)}) == 3
    assert cluster_worker_count({}) == 1


def test_vertex_cluster_spec_becomes_tf_config():
    environ = {
        "CLUSTER_SPEC": json.dumps(
            {
                "cluster": {
                    "workerpool0": ["a:1"],
                    "workerpool1": ["b:2", "c:3"],
                },
                "task": {"type": "workerpool1", "index": 1},
            }
        )
    }
    _vertex_cluster_spec_to_tf_config(environ)
    tf_config = json.loads(environ["TF_CONFIG"])
    assert tf_config["cluster"]["worker"] == ["a:1", "b:2", "c:3"]
    assert tf_config["task"] == {"type": "worker", "index": 2}


def test_cpu_gets_default_strategy_and_float32():
    strategy = choose_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert precision_policy("auto", strategy) == "float32"
    assert precision_policy("off", strategy) == "float32"
    assert precision_policy("on", strategy) == "mixed_bfloat16"
    assert isinstance(strategy, tf.distribute.Strategy)
