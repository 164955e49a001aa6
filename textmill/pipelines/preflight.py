"""Checks of a local run made before any work starts, so that a typo costs
a second, not an ingest and a Transform."""

from __future__ import annotations

import os
import tempfile

from textmill.config import ConfigError, PipelineConfig


def check_writable(directory: str, flag: str) -> None:
    """Creates a local output directory and checks it can be written.

    Raises:
        ConfigError: naming the directory, the reason and the flag to fix.
    """
    if "://" in directory:
        return
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise ConfigError(
            f"{directory} is not writable ({e.strerror}); pass {flag} with a "
            "directory you can write to."
        ) from None


def check_checkpoint_dir(directory: str | None, flag: str) -> None:
    """A local checkpoint directory to import must exist.

    Raises:
        ConfigError: naming the directory and the flag.
    """
    if directory and "://" not in directory and not os.path.isdir(directory):
        raise ConfigError(
            f"{flag} {directory}: no such directory; pass a keras-hub preset "
            "directory (a run's preset_dir, or `textmill convert` output)."
        )


def preflight(config: PipelineConfig) -> None:
    """Every check a local run can make before it starts.

    Raises:
        ConfigError: the first problem found.
    """
    config.validate()
    check_checkpoint_dir(config.train.init_from, "--init-from")
    check_checkpoint_dir(config.train.distill_from, "--distill-from")
    check_checkpoint_dir(config.tokenizer.init_from, "tokenizer.init_from")
    check_writable(config.work_dir, "--work-dir")
    check_writable(config.serving_dir, "--serving-dir")
