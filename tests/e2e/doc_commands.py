"""The README's and docs' commands, read from the files themselves, so the
tests that run them keep the docs true."""

import os
import re
import shlex
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
# The placeholder the docs use for a pushed version directory.
VERSION_PLACEHOLDER = "work/serving/distilgpt2/<version>"
# The server address the docs' client commands use.
DOCS_URL = "http://127.0.0.1:8501"


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


def section_commands(doc: str, heading: str, program: str) -> list[str]:
    """The `program ...` commands of the sh blocks under `heading` in
    REPO/doc (up to the next heading of the same level), with
    backslash-continued lines joined."""
    with open(os.path.join(REPO, doc), encoding="utf-8") as f:
        text = f.read()
    level = heading.split()[0]
    start = text.index(heading + "\n")
    end = text.find("\n" + level + " ", start + len(heading))
    section = text[start : end if end >= 0 else None]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith(program + " "):
                commands.append(line)
    return commands


def run_textmill(command: str, **replacements: str) -> str:
    """Runs one documented `textmill ...` command line with `replacements`
    applied to its text; returns its stdout.

    Raises:
        AssertionError: the command failed.
    """
    for old, new in replacements.items():
        command = command.replace(old, new)
    argv = shlex.split(command)
    assert argv[0] == "textmill", command
    done = subprocess.run(
        [sys.executable, "-m", "textmill.pipelines.cli", *argv[1:]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
    return done.stdout
