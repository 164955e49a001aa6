"""Training progress a person can follow: about ten lines per run, each
with the step, the loss, the time per step and an ETA."""

from __future__ import annotations

import logging
import time

import keras

# Records of this logger reach the quiet console of `textmill run`.
PROGRESS_LOGGER = "textmill.progress"


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(max(0, round(seconds)), 60)
    return f"{minutes}:{seconds:02d}"


class TrainingProgress(keras.callbacks.Callback):
    """Logs `step i/N (p%), loss, s/step, ETA` every tenth of the run.

    Args:
        total_steps: the run's optimizer steps.
        steps_per_epoch: steps of one (checkpoint) epoch, to turn Keras's
            epoch and batch numbers into a global step after a resume.
        lines: how many progress lines a whole run writes, about.
    """

    def __init__(self, total_steps: int, steps_per_epoch: int, lines: int = 10):
        super().__init__()
        self.total_steps = total_steps
        self.steps_per_epoch = steps_per_epoch
        self.every = max(1, total_steps // lines)
        self.logger = logging.getLogger(PROGRESS_LOGGER)
        self.epoch = 0
        self.first_step: int | None = None
        self.started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self.epoch * self.steps_per_epoch + batch + 1
        if self.first_step is None:
            self.first_step = step
            self.started = time.monotonic()
            if step > 1:
                self.logger.info(
                    "Trainer: resumed from a checkpoint at step %d", step - 1
                )
        if step % self.every and step != self.total_steps:
            return
        done = step - self.first_step + 1
        per_step = (time.monotonic() - self.started) / done
        loss = (logs or {}).get("loss")
        self.logger.info(
            "Trainer: step %d/%d (%d%%)%s, %.2f s/step, ETA %s",
            step,
            self.total_steps,
            100 * step // self.total_steps,
            f", loss {float(loss):.3f}" if loss is not None else "",
            per_step,
            _clock(per_step * (self.total_steps - step)),
        )
