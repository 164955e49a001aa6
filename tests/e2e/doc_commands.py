"""The README's and docs' commands, read from the files themselves, so the
tests that run them keep the docs true."""

import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
# The placeholder the docs use for a pushed version directory.
VERSION_PLACEHOLDER = "work/serving/distilgpt2/<version>"


def code_blocks(doc: str, language: str) -> list[str]:
    """The fenced ```language blocks of REPO/doc, in order."""
    with open(os.path.join(REPO, doc), encoding="utf-8") as f:
        text = f.read()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def run_readme_python(version_dir: str) -> str:
    """Runs the README's SavedModel snippet, as written, in a fresh Python
    process against `version_dir`; returns what it printed.

    Raises:
        AssertionError: the snippet is missing or failed.
    """
    snippets = [
        b
        for b in code_blocks("README.md", "python")
        if VERSION_PLACEHOLDER in b
    ]
    assert len(snippets) == 1, "README: expected one SavedModel snippet"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            snippets[0].replace(VERSION_PLACEHOLDER, version_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
