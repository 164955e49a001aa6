"""The quiet console: a line per component, progress records, and every
other byte (Python, C-level writes, child processes) in the log file."""

import io
import logging
import os
import subprocess
import sys
import textwrap

from absl import logging as absl_logging

from textmill.pipelines.console import PROGRESS_LOGGER, component_progress


def test_a_line_per_component_with_its_time_and_cache_state():
    console = io.StringIO()
    with component_progress(console, num_components=2) as progress:
        absl_logging.info("Component %s is running.", "TextExampleGen")
        absl_logging.info("Going to run a new execution %d", 1)
        absl_logging.info("Component %s is finished.", "TextExampleGen")
        logging.getLogger(PROGRESS_LOGGER).info("Trainer: step 5/10")
        absl_logging.info("Component %s is running.", "Transform")
        absl_logging.info("A cached execution %d is used.", 7)
        absl_logging.info("Component %s is finished.", "Transform")
    lines = console.getvalue().splitlines()
    assert lines[0] == "[1/2] TextExampleGen ..."
    assert lines[1].strip().startswith("TextExampleGen done in ")
    assert lines[2].strip() == "Trainer: step 5/10"
    assert lines[3] == "[2/2] Transform ..."
    assert "Transform reused from cache in" in lines[4]
    assert progress.components["TextExampleGen"]["cached"] is False
    assert progress.components["Transform"]["cached"] is True
    assert progress.components["Transform"]["seconds"] >= 0


def test_the_absl_verbosity_survives_a_save_and_restore():
    # TensorFlow's SavedModel code does exactly this around its traversal.
    console = io.StringIO()
    with component_progress(console, num_components=1):
        saved = absl_logging.get_verbosity()
        absl_logging.set_verbosity(absl_logging.FATAL)
        absl_logging.set_verbosity(saved)
        absl_logging.info("Component %s is running.", "Trainer")
    assert "[1/1] Trainer ..." in console.getvalue()


def test_everything_else_goes_to_the_log_file(tmp_path):
    log_file = tmp_path / "logs" / "run.log"
    script = textwrap.dedent(
        f"""
        import os, subprocess, sys
        from textmill.pipelines.console import quiet_console
        with quiet_console({str(log_file)!r}) as console:
            print("python stdout")
            print("python stderr", file=sys.stderr)
            os.write(2, b"c-level stderr\\n")
            subprocess.run([sys.executable, "-c",
                            "import sys; sys.stderr.write('child\\\\n')"])
            console.write("for the person\\n")
        print("after")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"textmill run: the full log is in {log_file}",
        "for the person",
    ]
    assert done.stdout == "after\n"
    logged = log_file.read_text()
    for text in ("python stdout", "python stderr", "c-level stderr", "child"):
        assert text in logged
