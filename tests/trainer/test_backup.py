"""AtomicBackupAndRestore: a backup cut short by a kill is never read."""

import json
import os

import keras
import numpy as np

from textmill.trainer.backup import POINTER_FILE, AtomicBackupAndRestore


def _model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


class _FirstEpoch(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = [w.copy() for w in self.model.get_weights()]

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs = getattr(self, "epochs", []) + [epoch]


def test_resumes_from_the_last_complete_backup(tmp_path):
    backup_dir = str(tmp_path / "backup")
    x, y = _data()
    first = _model()
    first.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[AtomicBackupAndRestore(backup_dir)],
    )
    with open(os.path.join(backup_dir, POINTER_FILE)) as f:
        assert json.load(f) == {"epoch": 2, "weights": "epoch-2.weights.h5"}
    assert sorted(os.listdir(backup_dir)) == [
        POINTER_FILE,
        "epoch-2.weights.h5",
    ]
    # A kill while saving epoch 3: its weights file is cut short and the
    # pointer's replacement never renamed into place.
    with open(os.path.join(backup_dir, "epoch-3.weights.h5"), "wb") as f:
        f.write(b"\x89HDF\r\n\x1a\n truncated")
    with open(os.path.join(backup_dir, POINTER_FILE + ".tmp-1"), "w") as f:
        f.write('{"epoch": 3, "wei')

    second = _model()
    probe = _FirstEpoch()
    second.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        callbacks=[AtomicBackupAndRestore(backup_dir), probe],
    )
    assert probe.epochs == [2, 3]
    for restored, saved in zip(probe.weights, first.get_weights(), strict=True):
        np.testing.assert_array_equal(restored, saved)
    # The cut-short file is gone once a later backup is complete.
    assert "epoch-3.weights.h5" not in os.listdir(backup_dir)
    assert "epoch-4.weights.h5" in os.listdir(backup_dir)


def test_no_backup_starts_from_scratch(tmp_path):
    x, y = _data()
    probe = _FirstEpoch()
    _model().fit(
        x,
        y,
        epochs=1,
        verbose=0,
        callbacks=[AtomicBackupAndRestore(str(tmp_path / "b")), probe],
    )
    assert probe.epochs == [0]
