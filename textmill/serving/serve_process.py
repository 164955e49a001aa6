"""`textmill serve` as a child process on a free port, for benchmarks and
tests that talk to the real server over HTTP."""

from __future__ import annotations

import re
import subprocess
import sys
import threading


def start_serve(
    serving_dir: str, timeout: float
) -> tuple[subprocess.Popen, str]:
    """Starts `textmill serve --port 0` on `serving_dir`.

    Args:
        serving_dir: directory of MODEL/VERSION/ SavedModels.
        timeout: seconds to wait for the server to print its URL.

    Returns:
        The process (the caller stops it) and the URL it serves at.

    Raises:
        RuntimeError: no URL was printed within `timeout` (the process is
            killed).
    """
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "textmill.pipelines.cli",
            "serve",
            "--model-dir",
            serving_dir,
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = []
    reader = threading.Thread(
        target=lambda: lines.append(process.stdout.readline()), daemon=True
    )
    reader.start()
    reader.join(timeout)
    match = re.search(r"http://\S+", lines[0]) if lines else None
    if match is None:
        process.kill()
        process.wait()
        raise RuntimeError(
            f"textmill serve did not print its URL within {timeout}s: {lines}"
        )
    return process, match.group(0)
