"""Epoch backups that survive a kill at any moment.

Keras's `BackupAndRestore` writes its weights file in place: a process
killed while saving leaves a file h5py cannot open, and the restarted
Trainer fails instead of resuming. `AtomicBackupAndRestore` writes every
backup under a new name and then replaces, by rename, a small JSON pointer
that names it and its epoch; a restart reads the weights the pointer names,
which are complete by construction. Older weight files are removed only
after the pointer has moved on.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from textmill.atomic_write import write_atomically

POINTER_FILE = "backup.json"


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` (epoch saves) with atomic
    backups; see the module doc.

    Args:
        backup_dir: where the backups live (local or gs://); they are kept
            after training, so a finished run is not trained again.
    """

    def __init__(self, backup_dir: str):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)
        self._pointer_path = os.path.join(backup_dir, POINTER_FILE)

    def _save_model(self) -> None:
        tf.io.gfile.makedirs(self.backup_dir)
        name = f"epoch-{self._current_epoch}.weights.h5"
        self.model.save_weights(os.path.join(self.backup_dir, name))
        pointer = {"epoch": self._current_epoch, "weights": name}
        write_atomically(self._pointer_path, json.dumps(pointer).encode())
        for old in tf.io.gfile.glob(os.path.join(self.backup_dir, "*.h5")):
            if os.path.basename(old) != name:
                tf.io.gfile.remove(old)

    def _load_model(self) -> None:
        if not tf.io.gfile.exists(self._pointer_path):
            return
        with tf.io.gfile.GFile(self._pointer_path) as f:
            pointer = json.load(f)
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            # The optimizer's variables must exist to be filled.
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(
            os.path.join(self.backup_dir, pointer["weights"])
        )
        self.model._initial_epoch = pointer["epoch"]
