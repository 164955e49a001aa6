"""The embedded default corpus: the docstrings of Python's standard library.

Every machine with Python has this prose, so the pipeline can run end to end
with no download. Each standard-library module becomes one document: its
module docstring followed by its class and function docstrings, in source
order. Modules are parsed with `ast`, never imported.
"""

import ast
import gzip
import json
import logging
import os
import sysconfig
from collections.abc import Iterator

from textmill.components.text_example_gen.files import write_atomically

logger = logging.getLogger(__name__)

CORPUS_FILE_NAME = "stdlib_docstrings.jsonl.gz"
# Modules whose docstrings hold fewer characters are left out.
MIN_DOCUMENT_CHARS = 200
# Directories that hold test suites, the IDLE application or third-party
# packages rather than the standard library's own modules.
_SKIPPED_DIRS = frozenset(
    {
        "test",
        "tests",
        "idle_test",
        "idlelib",
        "site-packages",
        "dist-packages",
        "__pycache__",
    }
)
_DEFINITIONS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _module_files(stdlib: str) -> Iterator[tuple[str, str]]:
    """Yields `(module name, path)` of the stdlib's sources, sorted by path."""
    for directory, subdirectories, file_names in os.walk(stdlib):
        subdirectories[:] = sorted(
            d for d in subdirectories if d not in _SKIPPED_DIRS
        )
        for file_name in sorted(file_names):
            if not file_name.endswith(".py") or file_name.startswith("test_"):
                continue
            path = os.path.join(directory, file_name)
            parts = os.path.relpath(path, stdlib)[: -len(".py")].split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def _docstrings(node: ast.AST) -> Iterator[str]:
    """Yields the docstrings of a node and its definitions, in source order."""
    docstring = ast.get_docstring(node, clean=True)
    if docstring:
        yield docstring
    for child in node.body:
        if isinstance(child, _DEFINITIONS):
            yield from _docstrings(child)


def _module_document(path: str) -> str | None:
    """Returns a module's docstrings joined by blank lines, or None."""
    with open(path, "rb") as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as e:
        logger.debug("Skipping %s, which does not parse: %s", path, e)
        return None
    return "\n\n".join(_docstrings(tree)) or None


def write_default_corpus(out_dir: str, max_documents: int | None = None) -> str:
    """Writes the standard-library docstring corpus as gzipped JSON Lines.

    Each line is `{"text": ..., "module": ...}`, one per standard-library
    module whose docstrings hold at least `MIN_DOCUMENT_CHARS` characters;
    test suites, `idlelib` and `site-packages` are left out. Modules come
    in path order, and the gzip header has no timestamp, so the same Python
    version always gives the same bytes. The file is written atomically.

    Args:
        out_dir: the directory to write to, local or `gs://`.
        max_documents: keep only the first this many documents; None keeps
            them all.

    Returns:
        The path of the written file, `{out_dir}/stdlib_docstrings.jsonl.gz`,
        usable as a TextExampleGen input pattern.

    Raises:
        ValueError: if `max_documents` is not None nor a positive int.
    """
    if max_documents is not None and (
        isinstance(max_documents, bool)
        or not isinstance(max_documents, int)
        or max_documents < 1
    ):
        raise ValueError(
            f"write_default_corpus: invalid max_documents={max_documents!r}. "
            "Fix: pass a positive int, or None for every module."
        )
    stdlib = sysconfig.get_paths()["stdlib"]
    lines = []
    num_chars = 0
    for module, path in _module_files(stdlib):
        if max_documents is not None and len(lines) >= max_documents:
            break
        text = _module_document(path)
        if text is None or len(text) < MIN_DOCUMENT_CHARS:
            continue
        lines.append(json.dumps({"text": text, "module": module}))
        num_chars += len(text)
    data = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0)
    out_path = os.path.join(out_dir, CORPUS_FILE_NAME)
    write_atomically(out_path, data)
    logger.info(
        "Wrote %d documents (%d chars) of standard-library docstrings from "
        "%s to %s",
        len(lines),
        num_chars,
        stdlib,
        out_path,
    )
    return out_path
