"""Picks a tf.distribute strategy and precision policy from the hardware.

One CPU: the default strategy. One GPU: OneDevice. Several GPUs: Mirrored.
A TPU (TPU_NAME set or a local TPU): TPUStrategy. Several workers (TF_CONFIG
or Vertex AI's CLUSTER_SPEC): MultiWorkerMirrored. The global batch size is
fixed by the caller, so every layout trains the same model.
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf


def cluster_worker_count(environ: dict | None = None) -> int:
    """Number of workers declared by TF_CONFIG or Vertex's CLUSTER_SPEC."""
    environ = os.environ if environ is None else environ
    for key in ("TF_CONFIG", "CLUSTER_SPEC"):
        if environ.get(key):
            cluster = json.loads(environ[key]).get("cluster", {})
            return sum(
                len(cluster.get(role, []))
                for role in (
                    "chief",
                    "master",
                    "worker",
                    "workerpool0",
                    "workerpool1",
                )
            )
    return 1


def _vertex_cluster_spec_to_tf_config(environ: dict) -> None:
    """Vertex AI Training describes the cluster in CLUSTER_SPEC; TF reads
    TF_CONFIG. Translate when only the former is present."""
    if environ.get("TF_CONFIG") or not environ.get("CLUSTER_SPEC"):
        return
    spec = json.loads(environ["CLUSTER_SPEC"])
    pools = spec.get("cluster", {})
    workers = pools.get("workerpool0", []) + pools.get("workerpool1", [])
    task = spec.get("task", {})
    index = task.get("index", 0)
    if task.get("type") == "workerpool1":
        index += len(pools.get("workerpool0", []))
    environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": workers},
            "task": {"type": "worker", "index": index},
        }
    )


def choose_strategy() -> tf.distribute.Strategy:
    """Returns the strategy that fits this process's hardware."""
    if cluster_worker_count() > 1:
        _vertex_cluster_spec_to_tf_config(os.environ)
        logging.info("Multi-worker training: %s", os.environ["TF_CONFIG"])
        return tf.distribute.MultiWorkerMirroredStrategy()
    if os.environ.get("TPU_NAME") or tf.config.list_logical_devices("TPU"):
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            os.environ.get("TPU_NAME", "")
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    if len(gpus) == 1:
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    return tf.distribute.get_strategy()


def precision_policy(setting: str, strategy: tf.distribute.Strategy) -> str:
    """The Keras dtype policy name for `setting` ("auto", "on", "off").

    "auto" turns mixed precision on only where it pays: bfloat16 on TPUs,
    float16 on GPUs with tensor cores (compute capability >= 7.0).
    """
    if setting == "off":
        return "float32"
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16"
    gpus = tf.config.list_physical_devices("GPU")
    capable = any(
        tf.config.experimental.get_device_details(gpu).get(
            "compute_capability", (0, 0)
        )
        >= (7, 0)
        for gpu in gpus
    )
    if setting == "on":
        return "mixed_float16" if gpus else "mixed_bfloat16"
    return "mixed_float16" if capable else "float32"
