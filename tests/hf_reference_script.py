"""Runs a script that builds a Hugging Face reference model with HF's TF
classes, which need Keras 2 (tf-keras): in its own Python process, as the
test process runs Keras 3."""

import os
import subprocess
import sys


def run_hf_reference_script(script: str, *args: str, timeout: int = 300):
    """Runs `python script *args` under `TF_USE_LEGACY_KERAS=1`; a failure
    fails the calling test with the end of the script's stderr."""
    done = subprocess.run(
        [sys.executable, script, *args],
        env={**os.environ, "TF_USE_LEGACY_KERAS": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
