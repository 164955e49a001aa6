"""One local run per work directory at a time.

Two runs on one work dir would share its ML Metadata store and its
checkpoint directory, and each would resume from the other's half-written
checkpoints. The lock is an advisory `flock` on a file in the work dir: the
kernel releases it when its holder exits, however it exits, so a killed run
never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from textmill.config import ConfigError

LOCK_FILE = ".textmill.lock"


class WorkDirBusy(ConfigError):
    """Another process holds the work directory's lock."""


@contextlib.contextmanager
def work_dir_lock(work_dir: str) -> Iterator[None]:
    """Holds `work_dir`'s lock for the duration of the `with` block.

    Args:
        work_dir: a local directory; created if missing.

    Raises:
        WorkDirBusy: another process holds the lock; the message names its
            pid.
    """
    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, LOCK_FILE)
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise WorkDirBusy(
                f"work dir {work_dir} is in use by another textmill run "
                f"(pid {holder}); wait for it to finish or pass another "
                "--work-dir."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)
