"""The embedded default corpora, from the docstrings of Python's standard
library: documents for language models, (description, summary line) pairs
for summarization, (docstring, package) pairs for classifiers.

Every machine with Python has this prose, so the pipeline can run end to end
with no download. Each standard-library module becomes one document: its
module docstring followed by its class and function docstrings, in source
order. Modules are parsed with `ast`, never imported.
"""

import ast
import gzip
import itertools
import json
import logging
import os
import sysconfig
import tempfile
from collections.abc import Iterator

logger = logging.getLogger(__name__)

CORPUS_FILE_NAME = "stdlib_docstrings.jsonl.gz"
SUMMARY_CORPUS_FILE_NAME = "stdlib_summaries.jsonl.gz"
# Modules whose docstrings hold fewer characters are left out.
MIN_DOCUMENT_CHARS = 200
# Summary pairs: the longest summary line and the shortest description.
MAX_SUMMARY_CHARS = 120
MIN_BODY_CHARS = 120
# Labelled docstrings: the shortest docstring, and the fewest docstrings a
# package needs to be a class.
MIN_LABELLED_CHARS = 200
MIN_LABEL_EXAMPLES = 60
LABEL_CORPUS_FILE_NAME = "stdlib_labels.jsonl.gz"
# With `with_packages`: the installed packages' module documents, after the
# standard library's, in their own file.
PACKAGES_CORPUS_FILE_NAME = "package_docstrings.jsonl.gz"
MAX_PACKAGE_DOCUMENTS = 4000
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


def _parse(path: str) -> ast.Module | None:
    with open(path, "rb") as f:
        source = f.read()
    try:
        return ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as e:
        logger.debug("Skipping %s, which does not parse: %s", path, e)
        return None


def _module_document(path: str) -> str | None:
    """Returns a module's docstrings joined by blank lines, or None."""
    tree = _parse(path)
    return tree and ("\n\n".join(_docstrings(tree)) or None)


def _summarised_docstrings(
    module: str, tree: ast.Module
) -> Iterator[dict[str, str]]:
    """(body, summary line) pairs of a module's definitions, PEP 257 style:
    a one-line summary, a blank line, then at least `MIN_BODY_CHARS` of
    description."""
    for node in ast.walk(tree):
        if not isinstance(node, _DEFINITIONS):
            continue
        docstring = ast.get_docstring(node, clean=True) or ""
        summary, blank, body = docstring.partition("\n\n")
        if (
            blank
            and "\n" not in summary
            and len(summary) <= MAX_SUMMARY_CHARS
            and len(body) >= MIN_BODY_CHARS
        ):
            yield {
                "text": body,
                "summary": summary,
                "name": f"{module}.{node.name}",
            }


def _check_max_documents(max_documents: int | None) -> None:
    if max_documents is not None and (
        isinstance(max_documents, bool)
        or not isinstance(max_documents, int)
        or max_documents < 1
    ):
        raise ValueError(
            f"invalid max_documents={max_documents!r}. Fix: pass a positive "
            "int, or None for every document."
        )


def _write_jsonl_gz(
    records: Iterator[dict[str, str]],
    out_dir: str,
    file_name: str,
    max_documents: int | None,
) -> str:
    """Writes the first `max_documents` records as gzipped JSON Lines with
    no timestamp in the header, atomically; returns the path."""
    lines = [
        json.dumps(record)
        for record in itertools.islice(records, max_documents)
    ]
    data = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0)
    out_path = os.path.join(out_dir, file_name)
    # A temporary name, then a rename: a reader never sees half a file.
    # Local only, so `textmill corpus` loads neither Beam nor TensorFlow.
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out_dir, delete=False) as f:
        f.write(data)
    os.chmod(f.name, 0o644)
    os.replace(f.name, out_path)
    logger.info("Wrote %d records to %s", len(lines), out_path)
    return out_path


def _module_documents(root: str) -> Iterator[dict[str, str]]:
    """`{"text", "module"}` of every module under `root` whose docstrings
    hold at least `MIN_DOCUMENT_CHARS` characters, in path order."""
    for module, path in _module_files(root):
        text = _module_document(path)
        if text is not None and len(text) >= MIN_DOCUMENT_CHARS:
            yield {"text": text, "module": module}


def write_default_corpus(
    out_dir: str,
    max_documents: int | None = None,
    *,
    with_packages: bool = False,
) -> str:
    """Writes the standard-library docstring corpus as gzipped JSON Lines.

    Each line is `{"text": ..., "module": ...}`, one per standard-library
    module whose docstrings hold at least `MIN_DOCUMENT_CHARS` characters;
    test suites, `idlelib` and `site-packages` are left out. Modules come
    in path order, and the gzip header has no timestamp, so the same Python
    version always gives the same bytes. The file is written atomically.

    Args:
        out_dir: the local directory to write to.
        max_documents: keep only the first this many documents; None keeps
            them all.
        with_packages: also write, to `PACKAGES_CORPUS_FILE_NAME` beside
            it, the first `MAX_PACKAGE_DOCUMENTS` module documents of the
            installed third-party packages (the environment's
            site-packages; ten times the standard library's text, for
            tasks that need more, such as next sentence prediction).

    Returns:
        The path of the written file, `{out_dir}/stdlib_docstrings.jsonl.gz`,
        usable as a TextExampleGen input pattern; with `with_packages`,
        `{out_dir}/*` (both files).

    Raises:
        ValueError: if `max_documents` is not None nor a positive int.
    """
    _check_max_documents(max_documents)
    path = _write_jsonl_gz(
        _module_documents(sysconfig.get_paths()["stdlib"]),
        out_dir,
        CORPUS_FILE_NAME,
        max_documents,
    )
    if not with_packages:
        return path
    _write_jsonl_gz(
        _module_documents(sysconfig.get_paths()["purelib"]),
        out_dir,
        PACKAGES_CORPUS_FILE_NAME,
        min(max_documents or MAX_PACKAGE_DOCUMENTS, MAX_PACKAGE_DOCUMENTS),
    )
    return os.path.join(out_dir, "*")


def write_summary_corpus(out_dir: str, max_documents: int | None = None) -> str:
    """Writes (text, summary) pairs from standard-library docstrings.

    PEP 257 docstrings open with a one-line summary of the description that
    follows, so every class or function docstring with a one-line first
    paragraph of at most `MAX_SUMMARY_CHARS` characters and at least
    `MIN_BODY_CHARS` of description below it is one example:
    `{"text": description, "summary": first line, "name": qualified name}`.
    Order, determinism and atomicity are as in `write_default_corpus`.

    Args:
        out_dir: the local directory to write to.
        max_documents: keep only the first this many pairs; None keeps all.

    Returns:
        The path of the written file, `{out_dir}/stdlib_summaries.jsonl.gz`.

    Raises:
        ValueError: if `max_documents` is not None nor a positive int.
    """
    _check_max_documents(max_documents)

    def records() -> Iterator[dict[str, str]]:
        for module, path in _module_files(sysconfig.get_paths()["stdlib"]):
            tree = _parse(path)
            if tree is not None:
                yield from _summarised_docstrings(module, tree)

    return _write_jsonl_gz(
        records(), out_dir, SUMMARY_CORPUS_FILE_NAME, max_documents
    )


def _package_docstrings(stdlib: str) -> Iterator[dict[str, str]]:
    """Docstrings of at least `MIN_LABELLED_CHARS` of the modules, classes
    and functions inside standard-library packages, in path and source
    order, each labelled with its top-level package."""
    for module, path in _module_files(stdlib):
        package, dot, _ = module.partition(".")
        if not dot and os.path.basename(path) != "__init__.py":
            continue  # a top-level module, in no package
        tree = _parse(path)
        if tree is None:
            continue
        nodes = [tree] + [
            node for node in ast.walk(tree) if isinstance(node, _DEFINITIONS)
        ]
        for node in nodes:
            docstring = ast.get_docstring(node, clean=True) or ""
            if len(docstring) >= MIN_LABELLED_CHARS:
                name = getattr(node, "name", "")
                yield {
                    "text": docstring,
                    "label": package,
                    "name": f"{module}.{name}" if name else module,
                }


def write_label_corpus(out_dir: str, max_documents: int | None = None) -> str:
    """Writes (docstring, area) pairs from standard-library packages.

    Every docstring of at least `MIN_LABELLED_CHARS` characters of a
    module, class or function inside a standard-library package is one
    example, labelled with the package's name (`email`, `asyncio`,
    `tkinter`, ...): `{"text": docstring, "label": package, "name":
    qualified name}`. Packages with fewer than `MIN_LABEL_EXAMPLES` such
    docstrings are left out, so every class has enough examples. The
    records take the classes in turn (in label order; within a class in
    path and source order), so the first `max_documents` are balanced.
    Determinism and atomicity are as in `write_default_corpus`.

    Args:
        out_dir: the local directory to write to.
        max_documents: keep only the first this many pairs; None keeps all.

    Returns:
        The path of the written file, `{out_dir}/stdlib_labels.jsonl.gz`.

    Raises:
        ValueError: if `max_documents` is not None nor a positive int.
    """
    _check_max_documents(max_documents)
    by_label: dict[str, list[dict[str, str]]] = {}
    for record in _package_docstrings(sysconfig.get_paths()["stdlib"]):
        by_label.setdefault(record["label"], []).append(record)
    classes = [
        by_label[label]
        for label in sorted(by_label)
        if len(by_label[label]) >= MIN_LABEL_EXAMPLES
    ]
    in_turn = (
        record
        for records in itertools.zip_longest(*classes)
        for record in records
        if record is not None
    )
    return _write_jsonl_gz(
        in_turn, out_dir, LABEL_CORPUS_FILE_NAME, max_documents
    )
