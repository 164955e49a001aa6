"""The translation corpus: pairs from gettext catalogs the tests write."""

import gettext
import gzip
import io
import json
import os

import pytest

from textmill.corpus.translations import (
    CatalogReport,
    read_mo,
    write_translation_corpus,
)
from textmill.pipelines.cli import main

PAIRS = [
    ("Open file", "Datei öffnen"),
    ("Save as", "Speichern unter"),
    ("Quit", "Beenden"),
]


def _records(path: str) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_written_catalogs_read_back_as_gettext_reads_them(byte_order, mo_bytes):
    entries = [(b"", b"Content-Type: text/plain; charset=UTF-8\n")] + [
        (s.encode(), t.encode()) for s, t in PAIRS
    ]
    data = mo_bytes(entries, byte_order)
    # The standard library's reader agrees with the test's writer.
    catalog = gettext.GNUTranslations(io.BytesIO(data))
    assert catalog.gettext("Quit") == "Beenden"
    assert sorted(read_mo(data)) == sorted(entries)


def test_pairs_are_extracted_and_skips_counted_by_reason(
    tmp_path, write_catalog
):
    locale = str(tmp_path / "locale")
    write_catalog(
        locale,
        "de",
        "app",
        PAIRS + [("Untranslated", ""), ("x" * 300, "y")],
        extra=[
            (b"file\x00files", b"Datei\x00Dateien"),
            (b"menu\x04Open", b"\xc3\x96ffnen"),
        ],
    )
    # A second catalog in Latin-1, repeating one pair.
    write_catalog(
        locale,
        "de",
        "tools",
        [("Quit", "Beenden"), ("Close", "Schließen")],
        charset="ISO-8859-1",
    )
    path, report = write_translation_corpus(
        "de", str(tmp_path / "out"), locale_dir=locale
    )
    records = _records(path)
    assert os.path.basename(path) == "translations-de.jsonl.gz"
    assert [(r["text"], r["target"]) for r in records] == sorted(PAIRS) + [
        ("Close", "Schließen")
    ]
    assert {r["domain"] for r in records} == {"app", "tools"}
    assert report.catalogs == 2 and report.pairs == 4
    assert dict(report.skipped) == {
        "header": 2,
        "plural": 1,
        "context": 1,
        "untranslated": 1,
        "too_long": 1,
        "duplicate": 1,
    }


def test_a_broken_catalog_is_skipped_and_reported(tmp_path, write_catalog):
    locale = str(tmp_path / "locale")
    write_catalog(locale, "fr", "good", [("Yes", "Oui")])
    bad = os.path.join(locale, "fr", "LC_MESSAGES", "bad.mo")
    with open(bad, "wb") as f:
        f.write(b"not a catalog at all")
    report = CatalogReport()
    path, report = write_translation_corpus(
        "fr", str(tmp_path / "out"), locale_dir=locale
    )
    assert report.unreadable == [bad]
    assert [r["target"] for r in _records(path)] == ["Oui"]


def test_a_language_without_catalogs_names_the_directory_and_the_fix(
    tmp_path, capsys, write_catalog
):
    locale = str(tmp_path / "locale")
    write_catalog(locale, "es", "app", [("Yes", "Sí")])
    code = main(
        [
            "corpus",
            "--translations",
            "de",
            "--locale-dir",
            locale,
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert os.path.join(locale, "de", "LC_MESSAGES") in err
    assert "found: es" in err and "--locale-dir" in err
    assert not (tmp_path / "out").exists()


def test_the_cli_writes_the_corpus_and_says_what_it_skipped(
    tmp_path, capsys, write_catalog
):
    locale = str(tmp_path / "locale")
    write_catalog(locale, "de", "app", PAIRS)
    code = main(
        [
            "corpus",
            "--translations",
            "de",
            "--locale-dir",
            locale,
            "--max-documents",
            "2",
            str(tmp_path / "out"),
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["pairs"] == 2 and summary["skipped"] == {"header": 1}
    assert len(_records(summary["path"])) == 2
