"""The custom training loop in one process, with the default strategy: it
must take the steps `model.fit` takes, and resume from its checkpoint."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from textmill.trainer import distributed_loop

BATCH = 8
FEATURES = 6


def _data(weighted: bool, batches: int = 4, seed: int = 0):
    """Global batches of a noisy linear regression, optionally weighted."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH * batches, FEATURES)).astype("float32")
    y = (x @ rng.normal(size=(FEATURES, 1))).astype("float32")
    columns = (x, y)
    if weighted:
        columns += (rng.uniform(0.0, 2.0, size=len(x)).astype("float32"),)
    return tf.data.Dataset.from_tensor_slices(columns).batch(BATCH)


def _model(seed: int = 1) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    _compile(model)
    return model


def _compile(model: keras.Model) -> None:
    model.compile(
        optimizer=keras.optimizers.AdamW(
            0.01, weight_decay=0.01, global_clipnorm=1.0
        ),
        loss=keras.losses.MeanSquaredError(),
        weighted_metrics=["mean_absolute_error"],
    )


def _fit(model, tmp_path, epochs: int, steps: int = 2, weighted=True):
    return distributed_loop.fit_distributed(
        model,
        _data(weighted).repeat(),
        _data(weighted, batches=2, seed=5),
        strategy=tf.distribute.get_strategy(),
        epochs=epochs,
        steps_per_epoch=steps,
        checkpoint_dir=str(tmp_path / "ckpt"),
        history_path=str(tmp_path / "history.csv"),
        log_dir=str(tmp_path / "logs"),
        chief=True,
    )


@pytest.mark.parametrize("weighted", [True, False])
def test_first_step_matches_model_fit(tmp_path, weighted):
    model = _model()
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    _compile(reference)

    logs = _fit(model, tmp_path, epochs=1, steps=1, weighted=weighted)
    fitted = reference.fit(
        _data(weighted),
        steps_per_epoch=1,
        epochs=1,
        validation_data=_data(weighted, batches=2, seed=5),
        verbose=0,
    ).history

    assert logs[0]["loss"] == pytest.approx(fitted["loss"][0], abs=1e-5)
    assert logs[0]["val_loss"] == pytest.approx(fitted["val_loss"][0], abs=1e-5)
    # The compiled metrics over the whole eval pass, as model.fit logs them.
    assert logs[0]["val_mean_absolute_error"] == pytest.approx(
        fitted["val_mean_absolute_error"][0], abs=1e-5
    )
    for ours, theirs in zip(
        model.get_weights(), reference.get_weights(), strict=True
    ):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_loss_decreases_and_history_is_written(tmp_path):
    logs = _fit(_model(), tmp_path, epochs=4, steps=4)  # all 4 batches

    assert len(logs) == 4
    assert logs[-1]["loss"] < logs[0]["loss"]
    assert logs[-1]["val_loss"] < logs[0]["val_loss"]
    with open(tmp_path / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["0", "1", "2", "3"]
    assert float(rows[-1]["loss"]) == pytest.approx(logs[-1]["loss"])
    assert float(rows[-1]["val_mean_absolute_error"]) == pytest.approx(
        logs[-1]["val_mean_absolute_error"]
    )
    for split in ("train", "validation"):
        assert tf.io.gfile.glob(str(tmp_path / "logs" / split / "events.*"))


def test_resumes_after_the_last_finished_epoch(tmp_path):
    first = _model()
    _fit(first, tmp_path, epochs=2)
    trained = first.get_weights()
    iterations = int(first.optimizer.iterations)

    second = _model(seed=2)  # other initial weights, overwritten by restore
    restored = []
    original_restore = distributed_loop.EpochCheckpoint.restore

    def record_restore(checkpoint):
        done = original_restore(checkpoint)
        restored.append((done, second.get_weights()))
        return done

    distributed_loop.EpochCheckpoint.restore = record_restore
    try:
        logs = _fit(second, tmp_path, epochs=3)
    finally:
        distributed_loop.EpochCheckpoint.restore = original_restore

    assert len(logs) == 1  # only the third epoch
    done, weights = restored[0]
    assert done == 2
    for ours, theirs in zip(weights, trained, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert int(second.optimizer.iterations) == iterations + 2
    with open(tmp_path / "history.csv") as f:
        epochs = [row["epoch"] for row in csv.DictReader(f)]
    assert epochs == ["0", "1", "2"]
    # One kept checkpoint, named by the finished epoch count.
    assert tf.train.latest_checkpoint(str(tmp_path / "ckpt")).endswith("-3")


def test_running_out_of_training_data_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="must repeat"):
        distributed_loop.fit_distributed(
            _model(),
            _data(True, batches=1),
            _data(True),
            strategy=tf.distribute.get_strategy(),
            epochs=1,
            steps_per_epoch=2,
            checkpoint_dir=str(tmp_path / "ckpt"),
            history_path=str(tmp_path / "history.csv"),
            log_dir=str(tmp_path / "logs"),
            chief=True,
        )


def test_mixed_float16_scales_the_loss_as_model_fit(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _model()
        reference = keras.models.clone_model(model)
        reference.set_weights(model.get_weights())
        _compile(reference)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        logs = _fit(model, tmp_path, epochs=1, steps=2)
        fitted = reference.fit(
            _data(True).repeat(), steps_per_epoch=2, epochs=1, verbose=0
        ).history
    finally:
        keras.mixed_precision.set_global_policy("float32")

    assert logs[0]["loss"] == pytest.approx(fitted["loss"][0], abs=1e-3)
    assert int(model.optimizer.iterations) == 2
    for ours, theirs in zip(
        model.get_weights(), reference.get_weights(), strict=True
    ):
        np.testing.assert_allclose(ours, theirs, atol=1e-3)
    for ours, theirs in zip(
        model.optimizer.variables, reference.optimizer.variables, strict=True
    ):
        np.testing.assert_allclose(
            np.asarray(ours), np.asarray(theirs), rtol=1e-5
        )
