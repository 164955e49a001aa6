"""The quiet console of `textmill run`.

A run's libraries write thousands of lines (TensorFlow's C++ start-up, Beam,
deprecation warnings, Keras). The console shows what a person follows: one
line per component with its state and time, the Trainer's progress with an
ETA, and the final summary. Everything, including what child processes and
C++ code write, goes to a log file under the work dir, whose path is printed
first. `--verbose` keeps today's everything-on-the-console output.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import TextIO

from absl import logging as absl_logging

# Messages of TFX's LocalDagRunner and launcher that mark a component's life.
_STARTED = "Component %s is running."
_FINISHED = "Component %s is finished."
_CACHED = "A cached execution %d is used."
# The logger whose INFO records always reach the console (the Trainer's
# progress; textmill.trainer.progress, which this module must not import).
PROGRESS_LOGGER = "textmill.progress"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s"


class ComponentProgress(logging.Handler):
    """Times each component from the runner's log records and, given a
    console, writes one line per component and the progress records.

    Args:
        console: where the lines go; None records the times only.
        num_components: components in the pipeline, for "[3/11]".
    """

    def __init__(self, console: TextIO | None, num_components: int):
        super().__init__(level=logging.INFO)
        self.console = console
        self.num_components = num_components
        self.started: dict[str, float] = {}
        self.current: str | None = None
        # name -> {"seconds": float, "cached": bool}, in finishing order.
        self.components: dict[str, dict] = {}

    def _line(self, text: str) -> None:
        if self.console is not None:
            self.console.write(text + "\n")
            self.console.flush()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == PROGRESS_LOGGER:
            self._line(f"      {record.getMessage()}")
        elif record.msg == _STARTED:
            self.current = str(record.args[0])
            self.started[self.current] = time.monotonic()
            self.components[self.current] = {"seconds": None, "cached": False}
            self._line(
                f"[{len(self.started)}/{self.num_components}] "
                f"{self.current} ..."
            )
        elif record.msg == _CACHED and self.current in self.components:
            self.components[self.current]["cached"] = True
        elif record.msg == _FINISHED:
            name = str(record.args[0])
            if name not in self.started:
                return
            entry = self.components[name]
            entry["seconds"] = round(time.monotonic() - self.started[name], 2)
            state = "reused from cache" if entry["cached"] else "done"
            self._line(f"      {name} {state} in {_duration(entry['seconds'])}")


@contextlib.contextmanager
def component_progress(
    console: TextIO | None, num_components: int
) -> Iterator[ComponentProgress]:
    """Attaches a ComponentProgress to the root logger for the block."""
    handler = ComponentProgress(console, num_components)
    root = logging.getLogger()
    level, verbosity = root.level, absl_logging.get_verbosity()
    # The runner's records are absl INFO; other handlers keep their levels.
    # Set through absl's flag: TensorFlow's SavedModel code saves and
    # restores the flag's value, so a level set on the logger alone falls
    # back to WARNING after the first export.
    root.setLevel(min(level or logging.INFO, logging.INFO))
    absl_logging.set_verbosity(absl_logging.INFO)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        absl_logging.set_verbosity(verbosity)


@contextlib.contextmanager
def quiet_console(log_path: str) -> Iterator[TextIO]:
    """Sends stdout and stderr (file descriptors 1 and 2, so child processes
    and C++ code too) to `log_path` for the block.

    Args:
        log_path: the log file; its directory is created.

    Yields:
        A stream to the console as it was before.
    """
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    console = os.fdopen(os.dup(saved[2]), "w", buffering=1)
    console.write(f"textmill run: the full log is in {log_path}\n")
    with open(log_path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield console
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            console.close()


def default_log_path(work_dir: str) -> str:
    """WORK_DIR/logs/run-<local time>.log (a temp dir for remote dirs)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = work_dir if "://" not in work_dir else "/tmp/textmill"
    return os.path.join(base, "logs", f"run-{stamp}.log")
