"""The benchmarks' `run.py` scripts, for their tests: loaded as modules,
or run as a process the way a user runs them."""

import importlib.util
import json
import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def script_path(name: str) -> str:
    """bench/<name>/run.py."""
    return os.path.join(REPO, "bench", name, "run.py")


def load_bench(name: str):
    """bench/<name>/run.py as a module."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", script_path(name)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_bench(name: str, out_dir, *args: str, timeout: int) -> dict:
    """Runs bench/<name>/run.py with `args` and `--out-dir out_dir`, the
    repository on PYTHONPATH; fails the test with the end of its stderr.

    Returns:
        Its results.json.
    """
    done = subprocess.run(
        [sys.executable, script_path(name), *args, "--out-dir", str(out_dir)],
        env={**os.environ, "PYTHONPATH": REPO},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(os.path.join(out_dir, "results.json")) as f:
        return json.load(f)
