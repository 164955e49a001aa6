"""Real multi-worker training: two worker processes on localhost, each with
its TF_CONFIG, run `training.fit_resumable` on a tiny GPT-2 causal LM with
the strategy `set_up_devices` picks (MultiWorkerMirroredStrategy), which
trains with the custom loop of `distributed_loop` (Keras 3's `model.fit`
fails under that strategy: keras-team/keras#20585).

The first run is killed after its second epoch (both workers exit right
after the checkpoint); the second run resumes from it and finishes. The
workers must agree on the weights, and take the steps one process takes
with `model.fit`.

A second test trains in mixed_float16, where the replicas' loss-scale
optimizers must agree on skipping a step that overflows on one of them.

Run directly (`python test_multi_worker.py OUT_DIR RUN`), this file is one
worker of run RUN ("first", "second" or "mixed"); TF_CONFIG says which.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

GLOBAL_BATCH = 8
SEQUENCE_LENGTH = 16
VOCABULARY = 64
TRAIN_BATCHES = 3
STEPS_PER_EPOCH = 2
EPOCHS = 3
KILL_AFTER = 2  # epochs the first run finishes before its workers exit
KILLED = 17  # their exit status
TIMEOUT_S = 240


def train_config():
    from textmill.config import TrainConfig

    return TrainConfig(
        preset="tiny",
        sequence_length=SEQUENCE_LENGTH,
        batch_size=GLOBAL_BATCH,
        train_steps=STEPS_PER_EPOCH * EPOCHS,
        eval_steps=2,
        checkpoint_every=STEPS_PER_EPOCH,
        mixed_precision="off",
    )


def datasets():
    """Global batches of `({"token_ids", "padding_mask"}, labels, weights)`:
    training (repeating) and eval (finite). Every worker builds the same."""
    import tensorflow as tf

    rng = np.random.default_rng(0)

    def batches(count):
        shape = (GLOBAL_BATCH * count, SEQUENCE_LENGTH)
        tokens = rng.integers(0, VOCABULARY, size=shape).astype("int32")
        # Every third row ends with padding that must weigh nothing.
        mask = np.ones(shape, bool)
        mask[::3, SEQUENCE_LENGTH // 2 :] = False
        x = {"token_ids": tokens, "padding_mask": mask}
        labels = np.roll(tokens, -1, axis=1)
        weights = mask.astype("float32")
        return tf.data.Dataset.from_tensor_slices((x, labels, weights)).batch(
            GLOBAL_BATCH, drop_remainder=True
        )

    return batches(TRAIN_BATCHES).repeat(), batches(2)


def build_model():
    """The tiny GPT-2 preset, compiled with an optimizer whose steps depend
    on the gradient's scale (SGD with momentum), so a wrong loss scaling
    across replicas shows."""
    import keras

    from textmill.trainer.mean_nll import MeanNLL
    from textmill.trainer.models.gpt2.gpt2_causal_lm import (
        build_gpt2_causal_lm,
    )

    model = build_gpt2_causal_lm("tiny", VOCABULARY)
    model.compile(
        optimizer=keras.optimizers.SGD(0.5, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[MeanNLL(), "sparse_categorical_accuracy"],
    )
    return model


def fn_args(out_dir: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        custom_config={
            "checkpoint_root": os.path.join(out_dir, "checkpoints"),
            "family": "test",
        },
        train_files=["unused-train-*"],
        transform_graph_path="unused-transform",
        model_run_dir=os.path.join(out_dir, "model_run"),
    )


def _save_weights(path: str, **weights) -> None:
    np.savez(
        path,
        **{
            f"{name}{i}": w
            for name, values in weights.items()
            for i, w in enumerate(values)
        },
    )


def run_worker(out_dir: str, run: str) -> None:
    """One worker of the first (killed) or second run; writes
    OUT_DIR/<run>-worker<index>.npz with the initial, restored and final
    weights and whether it is the chief."""
    import keras
    import tensorflow as tf

    from textmill.trainer import distributed_loop, training

    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    prefix = os.path.join(out_dir, f"{run}-worker{index}")
    hparams = train_config()
    strategy = training.set_up_devices(hparams)
    assert isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    assert strategy.num_replicas_in_sync == 2
    keras.utils.set_random_seed(index)  # initial values must be broadcast
    with strategy.scope():
        model = build_model()
    initial = model.get_weights()
    restored = []
    checkpoint_class = distributed_loop.EpochCheckpoint
    original_restore, original_save = (
        checkpoint_class.restore,
        checkpoint_class.save,
    )

    def restore(checkpoint):
        done = original_restore(checkpoint)
        restored.extend(model.get_weights())
        return done

    def save(checkpoint, epochs_done):
        original_save(checkpoint, epochs_done)
        if run == "first" and epochs_done == KILL_AFTER:
            _save_weights(f"{prefix}-killed.npz", killed=model.get_weights())
            os._exit(KILLED)

    checkpoint_class.restore, checkpoint_class.save = restore, save
    train_ds, eval_ds = datasets()
    chief = training.fit_resumable(
        model, train_ds, eval_ds, hparams, fn_args(out_dir), strategy
    )
    _save_weights(
        f"{prefix}.npz",
        initial=initial,
        restored=restored,
        final=model.get_weights(),
        chief=[np.array(chief)],
    )


def run_mixed_precision_worker(out_dir: str) -> None:
    """Trains a small Dense model in mixed_float16 whose first batch
    overflows the float16 gradients on one replica only; writes
    OUT_DIR/mixed-worker<index>.npz with the final weights and loss scale."""
    import keras
    import tensorflow as tf

    from textmill.config import TrainConfig
    from textmill.trainer import training

    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    hparams = TrainConfig(
        batch_size=GLOBAL_BATCH,
        train_steps=4,
        eval_steps=1,
        checkpoint_every=4,
        mixed_precision="off",
    )
    strategy = training.set_up_devices(hparams)
    keras.mixed_precision.set_global_policy("mixed_float16")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH * 4, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    half = GLOBAL_BATCH // 2
    y[:half] = 1e4  # the first replica's share of the first batch
    x[half:GLOBAL_BATCH], y[half:GLOBAL_BATCH] = 0.0, 0.0  # the other's
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    training.fit_resumable(
        model,
        dataset.repeat(),
        dataset.take(1),
        hparams,
        fn_args(out_dir),
        strategy,
    )
    _save_weights(
        os.path.join(out_dir, f"mixed-worker{index}.npz"),
        final=model.get_weights(),
        scale=[np.asarray(model.optimizer.dynamic_scale.numpy())],
        initial_scale=[np.asarray(model.optimizer.initial_scale)],
    )


def _start_workers(out_dir, run: str) -> list[str]:
    """Runs both workers of a run to their end; returns their logs."""
    import portpicker

    ports = [portpicker.pick_unused_port() for _ in range(2)]
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    workers = []
    for index in range(2):
        env = dict(os.environ)
        env.pop("CLUSTER_SPEC", None)
        tmp = os.path.join(out_dir, f"{run}-tmp{index}")
        os.makedirs(tmp)
        env.update(
            TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
            CUDA_VISIBLE_DEVICES="",
            TF_CPP_MIN_LOG_LEVEL="2",
            KERAS_BACKEND="tensorflow",
            TMPDIR=tmp,  # where a non-chief worker puts its throwaway copy
        )
        workers.append(
            subprocess.Popen(
                [sys.executable, __file__, str(out_dir), run],
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
    expected = KILLED if run == "first" else 0
    for index, worker in enumerate(workers):
        assert worker.returncode == expected, logs[index][-3000:]
    return logs


def _weights(npz, name: str) -> list[np.ndarray]:
    count = sum(
        k.startswith(name) and k[len(name) :].isdigit() for k in npz.files
    )
    return [npz[f"{name}{i}"] for i in range(count)]


def _assert_all_close(left, right, atol: float) -> None:
    assert len(left) == len(right) > 0
    for a, b in zip(left, right, strict=True):
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)


def _single_process_reference(initial, steps: int) -> list[np.ndarray]:
    """The weights after `steps` steps of `model.fit` in one process."""
    model = build_model()
    model.set_weights(initial)
    train_ds, _ = datasets()
    model.fit(train_ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return model.get_weights()


@pytest.mark.slow
@pytest.mark.timeout(2 * TIMEOUT_S + 120)
def test_two_workers_fit_resumable_kill_and_resume(tmp_path):
    _start_workers(tmp_path, "first")
    killed = [
        _weights(np.load(tmp_path / f"first-worker{i}-killed.npz"), "killed")
        for i in range(2)
    ]
    _start_workers(tmp_path, "second")
    second = [np.load(tmp_path / f"second-worker{i}.npz") for i in range(2)]

    # Initial values are broadcast, though the workers' seeds differ.
    _assert_all_close(
        _weights(second[0], "initial"), _weights(second[1], "initial"), 0
    )
    # The second run starts where the first stopped, on both workers ...
    for i in range(2):
        _assert_all_close(_weights(second[i], "restored"), killed[i], 0)
    # ... and both end with the same, changed weights.
    final = _weights(second[0], "final")
    _assert_all_close(final, _weights(second[1], "final"), 1e-6)
    change = max(
        np.abs(f - k).max() for f, k in zip(final, killed[0], strict=True)
    )
    assert change > 1e-4
    assert [bool(s["chief0"]) for s in second] == [True, False]

    # Two workers, one replica each, take the steps one process takes.
    reference = _single_process_reference(
        _weights(second[0], "initial"), KILL_AFTER * STEPS_PER_EPOCH
    )
    _assert_all_close(killed[0], reference, 1e-5)

    model_run = tmp_path / "model_run"
    with open(model_run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert all(float(row["loss"]) > 0 for row in rows)
    assert all(float(row["val_loss"]) > 0 for row in rows)
    # val_nll sums every weighted label of the eval set over both workers'
    # replicas (their shares carry unequal weights): it is the final
    # model's as one process evaluates it.
    model = build_model()
    model.set_weights(final)
    evaluated = model.evaluate(datasets()[1], return_dict=True, verbose=0)
    assert float(rows[-1]["val_nll"]) == pytest.approx(
        evaluated["nll"], rel=1e-5
    )
    assert (model_run / "loss_curves.png").stat().st_size > 0
    assert list((model_run / "train").glob("events.*"))
    # The non-chief worker's throwaway checkpoints are gone.
    for run in ("first", "second"):
        leftovers = os.listdir(tmp_path / f"{run}-tmp1")
        assert not [name for name in leftovers if "ckpt" in name]


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_S + 60)
def test_two_workers_agree_on_skipping_overflowing_mixed_precision_steps(
    tmp_path,
):
    _start_workers(tmp_path, "mixed")
    results = [np.load(tmp_path / f"mixed-worker{i}.npz") for i in range(2)]

    _assert_all_close(
        _weights(results[0], "final"), _weights(results[1], "final"), 0
    )
    assert results[0]["scale0"] == results[1]["scale0"]
    assert results[0]["scale0"] < results[0]["initial_scale0"]  # skipped


if __name__ == "__main__":
    if sys.argv[2] == "mixed":
        run_mixed_precision_worker(sys.argv[1])
    else:
        run_worker(sys.argv[1], sys.argv[2])
