"""The separate Python environment that packs and runs LiteRT-LM bundles.

`litert-lm-builder` needs protobuf >= 6.31, which cannot share a venv with
TensorFlow 2.16, so the packer (`litert-lm pack`) and the runtime
(`litert_lm`) live in their own venv, `.venv-litert`, which `make setup`
creates from `requirements/litert-lm.txt`. textmill runs them as
subprocesses.
"""

from __future__ import annotations

import os
import sys

import textmill

# Overrides where the LiteRT-LM venv is (a folder with bin/python).
VENV_ENV = "TEXTMILL_LITERT_VENV"
VENV_DIRNAME = ".venv-litert"
SETUP_HINT = (
    "run `make setup` (it creates .venv-litert from "
    "requirements/litert-lm.txt) or set TEXTMILL_LITERT_VENV to a venv "
    "with those packages"
)


def _candidates() -> list[str]:
    if os.environ.get(VENV_ENV):
        return [os.environ[VENV_ENV]]
    # Beside the source tree (editable install, PYTHONPATH checkout), then
    # beside the running venv (`.venv` and `.venv-litert` share a folder).
    source_root = os.path.dirname(os.path.dirname(textmill.__file__))
    return [
        os.path.join(source_root, VENV_DIRNAME),
        os.path.join(os.path.dirname(sys.prefix), VENV_DIRNAME),
    ]


def find_litert_venv() -> str | None:
    """The LiteRT-LM venv's folder, or None when there is none."""
    for venv in _candidates():
        if os.path.isfile(os.path.join(venv, "bin", "litert-lm")):
            return os.path.abspath(venv)
    return None


def require_litert_venv() -> str:
    """The LiteRT-LM venv's folder.

    Raises:
        FileNotFoundError: no venv with the `litert-lm` CLI was found,
            naming the places looked in and the fix.
    """
    venv = find_litert_venv()
    if venv is None:
        raise FileNotFoundError(
            "No LiteRT-LM environment (a venv with the litert-lm CLI) in "
            f"{', '.join(map(repr, _candidates()))}: {SETUP_HINT}."
        )
    return venv
