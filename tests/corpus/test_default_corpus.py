import __future__

import gzip
import importlib
import inspect
import json
import os
import sysconfig

import pytest

from textmill.corpus.default_corpus import (
    CORPUS_FILE_NAME,
    LABEL_CORPUS_FILE_NAME,
    MAX_SUMMARY_CHARS,
    MIN_BODY_CHARS,
    MIN_DOCUMENT_CHARS,
    MIN_LABEL_EXAMPLES,
    MIN_LABELLED_CHARS,
    PACKAGES_CORPUS_FILE_NAME,
    SUMMARY_CORPUS_FILE_NAME,
    write_default_corpus,
    write_label_corpus,
    write_summary_corpus,
)
from textmill.pipelines.cli import main


def read_corpus(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_first_documents_are_stdlib_docstrings(tmp_path):
    path = write_default_corpus(str(tmp_path), max_documents=5)
    assert path == str(tmp_path / CORPUS_FILE_NAME)
    assert os.listdir(tmp_path) == [CORPUS_FILE_NAME]  # no temporary file
    rows = read_corpus(path)
    assert len(rows) == 5
    assert [row["module"] for row in rows][0] == "__future__"
    assert all(set(row) == {"text", "module"} for row in rows)
    assert all(len(row["text"]) >= MIN_DOCUMENT_CHARS for row in rows)
    # The document opens with the module docstring.
    first_line = __future__.__doc__.strip().splitlines()[0]
    assert rows[0]["text"].startswith(first_line)


def test_corpus_is_byte_for_byte_deterministic(tmp_path):
    first = write_default_corpus(str(tmp_path / "a"), max_documents=20)
    second = write_default_corpus(str(tmp_path / "b"), max_documents=20)
    with open(first, "rb") as a, open(second, "rb") as b:
        assert a.read() == b.read()


def test_full_corpus_skips_tests_and_idlelib(tmp_path):
    rows = read_corpus(write_default_corpus(str(tmp_path)))
    modules = [row["module"] for row in rows]
    assert len(rows) > 200
    assert len(set(modules)) == len(modules)
    assert "argparse" in modules and "json" in modules
    for module in modules:
        parts = module.split(".")
        assert not {"test", "tests", "idlelib", "site-packages"} & set(parts)
        assert not parts[-1].startswith("test_")
    assert sum(len(row["text"]) for row in rows) > 500_000


@pytest.mark.parametrize("value", [0, -3, 2.0, True])
def test_invalid_max_documents(tmp_path, value):
    with pytest.raises(ValueError, match=f"max_documents={value!r}. Fix:"):
        write_default_corpus(str(tmp_path), max_documents=value)


def test_summary_corpus_pairs_descriptions_with_their_summary_line(tmp_path):
    path = write_summary_corpus(str(tmp_path), max_documents=50)
    assert path == str(tmp_path / SUMMARY_CORPUS_FILE_NAME)
    rows = read_corpus(path)
    assert len(rows) == 50
    for row in rows:
        assert set(row) == {"text", "summary", "name"}
        assert "\n" not in row["summary"]
        assert 0 < len(row["summary"]) <= MAX_SUMMARY_CHARS
        assert len(row["text"]) >= MIN_BODY_CHARS
    # The pair is a docstring split at its first blank line.
    module_name, _, qualname = rows[0]["name"].rpartition(".")
    module = importlib.import_module(module_name)
    docstring = inspect.cleandoc(getattr(module, qualname).__doc__)
    assert docstring == rows[0]["summary"] + "\n\n" + rows[0]["text"]
    again = write_summary_corpus(str(tmp_path / "again"), max_documents=50)
    with open(path, "rb") as a, open(again, "rb") as b:
        assert a.read() == b.read()


def test_label_corpus_takes_package_areas_in_turn(tmp_path):
    path = write_label_corpus(str(tmp_path))
    assert path == str(tmp_path / LABEL_CORPUS_FILE_NAME)
    rows = read_corpus(path)
    counts = {}
    for row in rows:
        assert set(row) == {"text", "label", "name"}
        assert len(row["text"]) >= MIN_LABELLED_CHARS
        # The label is the top-level package of the docstring's module.
        assert row["name"].split(".")[0] == row["label"]
        counts[row["label"]] = counts.get(row["label"], 0) + 1
    assert len(counts) >= 4 and min(counts.values()) >= MIN_LABEL_EXAMPLES
    assert "email" in counts and "asyncio" in counts
    # The first records take every class once, in label order.
    labels = sorted(counts)
    assert [row["label"] for row in rows[: len(labels)]] == labels
    # Its first records are the same records, balanced.
    first = read_corpus(
        write_label_corpus(str(tmp_path / "few"), max_documents=len(labels))
    )
    assert first == rows[: len(labels)]


def test_with_packages_adds_the_installed_packages_docstrings(tmp_path):
    pattern = write_default_corpus(
        str(tmp_path), max_documents=30, with_packages=True
    )
    assert pattern == os.path.join(str(tmp_path), "*")
    assert sorted(os.listdir(tmp_path)) == [
        PACKAGES_CORPUS_FILE_NAME,
        CORPUS_FILE_NAME,
    ]
    stdlib = read_corpus(tmp_path / CORPUS_FILE_NAME)
    packages = read_corpus(tmp_path / PACKAGES_CORPUS_FILE_NAME)
    assert len(stdlib) == len(packages) == 30
    assert not {row["module"] for row in stdlib} & {
        row["module"] for row in packages
    }
    # Modules of the environment's site-packages, such as absl's.
    site_packages = sysconfig.get_paths()["purelib"]
    for row in packages:
        top = row["module"].split(".")[0]
        assert os.path.exists(os.path.join(site_packages, top)) or any(
            name.startswith(top + ".") for name in os.listdir(site_packages)
        ), row["module"]
        assert len(row["text"]) >= MIN_DOCUMENT_CHARS


def test_with_packages_is_refused_beside_another_corpus(tmp_path, capsys):
    code = main(
        ["corpus", "--labels", "--with-packages", str(tmp_path / "out")]
    )
    assert code != 0
    assert "--with-packages" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
