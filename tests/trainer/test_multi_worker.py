"""Real multi-worker training: two worker processes on localhost, each with
its TF_CONFIG, train one model with the strategy `choose_strategy` picks
(MultiWorkerMirroredStrategy) and must end with the same weights.

The step is a custom one (strategy.run + optimizer.apply_gradients): Keras
3's `model.fit` fails under MultiWorkerMirroredStrategy when it reduces the
first batch (keras-team/keras#20585).

Run directly (`python test_multi_worker.py OUT_DIR`), this file is one
worker; TF_CONFIG says which.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

GLOBAL_BATCH = 16
STEPS = 6
TIMEOUT_S = 300


def train_one_worker(out_dir: str) -> None:
    """Trains a tiny regression model and saves initial and final weights
    to OUT_DIR/worker<index>.npz."""
    import keras
    import tensorflow as tf

    from textmill.trainer.distribution import choose_strategy

    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    strategy = choose_strategy()
    assert isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    assert strategy.num_replicas_in_sync == 2

    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1))).astype("float32")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    # The batch is global: each of the 2 replicas sees half of it.
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(GLOBAL_BATCH, drop_remainder=True)
        .with_options(options)
    )
    keras.utils.set_random_seed(index)  # replicas must not rely on seeds
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(4, activation="tanh"),
                keras.layers.Dense(1),
            ]
        )
        optimizer = keras.optimizers.SGD(0.1)
        optimizer.build(model.trainable_variables)
    initial = model.get_weights()
    squared_error = keras.losses.MeanSquaredError(reduction=None)

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            # Mean over the global batch, whatever the replica count.
            loss = tf.nn.compute_average_loss(
                squared_error(y, model(x, training=True)),
                global_batch_size=GLOBAL_BATCH,
            )
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(
            zip(gradients, model.trainable_variables, strict=True)
        )
        return loss

    @tf.function
    def train_step(batch):
        losses = strategy.run(replica_step, args=batch)
        return strategy.reduce("SUM", losses, axis=None)

    batches = iter(strategy.experimental_distribute_dataset(dataset))
    losses = [float(train_step(next(batches))) for _ in range(STEPS)]
    assert losses[-1] < losses[0], losses
    np.savez(
        os.path.join(out_dir, f"worker{index}.npz"),
        **{f"initial{i}": w for i, w in enumerate(initial)},
        **{f"final{i}": w for i, w in enumerate(model.get_weights())},
    )


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_S + 60)
def test_two_workers_train_the_same_weights(tmp_path):
    import portpicker

    ports = [portpicker.pick_unused_port() for _ in range(2)]
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    workers = []
    for index in range(2):
        env = dict(os.environ)
        env.pop("CLUSTER_SPEC", None)
        env.update(
            TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
            CUDA_VISIBLE_DEVICES="",
            TF_CPP_MIN_LOG_LEVEL="2",
            KERAS_BACKEND="tensorflow",
        )
        workers.append(
            subprocess.Popen(
                [sys.executable, __file__, str(tmp_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = []
    try:
        for worker in workers:
            logs.append(worker.communicate(timeout=TIMEOUT_S)[0])
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for index, worker in enumerate(workers):
        assert worker.returncode == 0, logs[index][-3000:]

    results = [np.load(tmp_path / f"worker{i}.npz") for i in range(2)]
    count = len([k for k in results[0].files if k.startswith("final")])
    assert count == 4  # two kernels, two biases
    for i in range(count):
        np.testing.assert_allclose(
            results[0][f"final{i}"], results[1][f"final{i}"], atol=1e-6
        )
        # Initial values are broadcast, so the workers start equal too.
        np.testing.assert_array_equal(
            results[0][f"initial{i}"], results[1][f"initial{i}"]
        )
    change = max(
        np.abs(results[0][f"final{i}"] - results[0][f"initial{i}"]).max()
        for i in range(count)
    )
    assert change > 1e-3


if __name__ == "__main__":
    train_one_worker(sys.argv[1])
