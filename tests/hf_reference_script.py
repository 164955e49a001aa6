"""Hugging Face reference checkpoints for the converter tests: the script
that builds one with HF's TF classes, which need Keras 2 (tf-keras), runs
in its own Python process, as the test process runs Keras 3; a test may
copy a checkpoint with a changed config."""

import json
import os
import shutil
import subprocess
import sys

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def run_hf_reference_script(script: str, *args: str, timeout: int = 300):
    """Runs `python script *args` under `TF_USE_LEGACY_KERAS=1`, with this
    directory on its path (for `hf_pytorch_names`); a failure fails the
    calling test with the end of the script's stderr."""
    path = os.pathsep.join(
        p for p in (TESTS_DIR, os.environ.get("PYTHONPATH")) if p
    )
    done = subprocess.run(
        [sys.executable, script, *args],
        env={**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def copy_checkpoint(hf_reference, tmp_path, config_changes=None):
    """A reference's safetensors checkpoint copied under `tmp_path`, with
    `config_changes` written into its config.json."""
    directory = shutil.copytree(
        hf_reference / "safetensors", tmp_path / "checkpoint"
    )
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    config.update(config_changes or {})
    config_path.write_text(json.dumps(config))
    return directory
