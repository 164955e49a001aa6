"""Sentence pairs from the gettext message catalogs a Linux system ships.

Every program translated with gettext installs, per language, a binary
catalog `/usr/share/locale/<LANG>/LC_MESSAGES/<domain>.mo` that maps each
English UI string (msgid) to its translation (msgstr). Read together they
are tens of thousands of real (English, translation) pairs, which the
`translation` family learns from.

The `.mo` layout (GNU gettext manual, "The Format of GNU MO Files"): a
magic number that also gives the byte order, a revision, the number of
strings N, and the offsets of two tables of N (length, offset) entries,
one for the original strings and one for the translations. An original
with a NUL byte is a plural entry (singular NUL plural), one with an EOT
byte (0x04) has a context; the empty original is the header, whose
`Content-Type` gives the charset of the catalog.
"""

from __future__ import annotations

import collections
import dataclasses
import email.parser
import glob
import json
import logging
import os
import struct
from collections.abc import Iterator

from textmill.corpus.default_corpus import (
    _check_max_documents,
    _write_jsonl_gz,
)

logger = logging.getLogger(__name__)

LOCALE_DIR = "/usr/share/locale"
DEFAULT_LANGUAGE = "de"
TRANSLATIONS_FILE_NAME = "translations-{lang}.jsonl.gz"
# UI strings longer than this are help texts and man-page paragraphs.
DEFAULT_MAX_CHARS = 200
_MAGIC = 0x950412DE
# Why an entry of a catalog is not a pair.
SKIP_REASONS = (
    "header",
    "plural",
    "context",
    "untranslated",
    "too_long",
    "undecodable",
    "duplicate",
)


@dataclasses.dataclass
class CatalogReport:
    """What reading the catalogs of one language found.

    Args:
        catalogs: `.mo` files read.
        unreadable: `.mo` files that are not valid catalogs, by path.
        pairs: pairs written.
        skipped: entries left out, by reason (`SKIP_REASONS`).
    """

    catalogs: int = 0
    unreadable: list[str] = dataclasses.field(default_factory=list)
    pairs: int = 0
    skipped: collections.Counter = dataclasses.field(
        default_factory=collections.Counter
    )


def read_mo(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (original, translation) byte strings of a `.mo` catalog.

    Args:
        data: the file's bytes.

    Returns:
        The entries in file order, the header (empty original) included.

    Raises:
        ValueError: `data` is not a `.mo` catalog (magic number, truncated
            tables).
    """
    if len(data) < 20:
        raise ValueError(f"{len(data)} bytes is too short for a .mo header")
    for order in "<>":
        if struct.unpack(order + "I", data[:4])[0] == _MAGIC:
            break
    else:
        raise ValueError(f"magic number {data[:4].hex()} is not gettext's")
    _, count, originals, translations = struct.unpack(order + "4I", data[4:20])

    def strings(table: int) -> Iterator[bytes]:
        for index in range(count):
            start = table + 8 * index
            length, offset = struct.unpack(
                order + "2I", data[start : start + 8]
            )
            if offset + length > len(data):
                raise ValueError(f"string {index} ends past the file's end")
            yield data[offset : offset + length]

    try:
        return list(zip(strings(originals), strings(translations), strict=True))
    except struct.error as e:
        raise ValueError(f"truncated string table: {e}") from None


def catalog_charset(header: bytes) -> str:
    """The charset a catalog's header declares (UTF-8 when it declares
    none)."""
    fields = email.parser.Parser().parsestr(
        header.decode("ascii", "replace"), headersonly=True
    )
    charset = fields.get_content_charset()
    return charset if charset and charset != "charset" else "utf-8"


def catalog_pairs(
    data: bytes, report: CatalogReport, max_chars: int
) -> Iterator[tuple[str, str]]:
    """The (English, translation) pairs of one catalog; what is left out
    is counted in `report.skipped`.

    Raises:
        ValueError: `data` is not a `.mo` catalog.
    """
    entries = read_mo(data)
    headers = [translation for original, translation in entries if not original]
    charset = catalog_charset(headers[0]) if headers else "utf-8"
    for original, translation in entries:
        if not original:
            reason = "header"
        elif b"\x00" in original:
            reason = "plural"
        elif b"\x04" in original:
            reason = "context"
        elif not translation.strip():
            reason = "untranslated"
        else:
            try:
                source = original.decode("utf-8").strip()
                target = translation.decode(charset).strip()
            except (UnicodeDecodeError, LookupError):
                report.skipped["undecodable"] += 1
                continue
            if len(source) > max_chars or len(target) > max_chars:
                reason = "too_long"
            else:
                yield source, target
                continue
        report.skipped[reason] += 1


def translation_records(
    lang: str,
    locale_dir: str = LOCALE_DIR,
    max_chars: int = DEFAULT_MAX_CHARS,
    report: CatalogReport | None = None,
) -> Iterator[dict[str, str]]:
    """`{"text": English, "target": translation, "domain": catalog}`
    records of every catalog of `lang`, catalogs in name order; a pair
    that appeared before (in any catalog) is skipped as a duplicate.

    Args:
        lang: the language directory's name, e.g. "de" or "pt_BR".
        locale_dir: the directory holding `<lang>/LC_MESSAGES/*.mo`.
        max_chars: pairs with a longer side are skipped.
        report: filled with what was read and skipped.

    Raises:
        FileNotFoundError: no `.mo` catalog of `lang` under `locale_dir`.
    """
    report = report if report is not None else CatalogReport()
    catalog_dir = os.path.join(locale_dir, lang, "LC_MESSAGES")
    paths = sorted(glob.glob(os.path.join(catalog_dir, "*.mo")))
    if not paths:
        languages = (
            sorted(
                name
                for name in os.listdir(locale_dir)
                if glob.glob(
                    os.path.join(locale_dir, name, "LC_MESSAGES", "*.mo")
                )
            )
            if os.path.isdir(locale_dir)
            else []
        )
        choices = ", ".join(languages[:12]) or "none"
        raise FileNotFoundError(
            f"no gettext catalogs (*.mo) for language {lang!r} in "
            f"{catalog_dir}. Fix: pick a language that has some (found: "
            f"{choices}), or pass the directory that holds "
            "<LANG>/LC_MESSAGES/*.mo with --locale-dir."
        )
    seen = set()
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        domain = os.path.splitext(os.path.basename(path))[0]
        try:
            pairs = list(catalog_pairs(data, report, max_chars))
        except ValueError as e:
            logger.warning("Skipping %s: %s", path, e)
            report.unreadable.append(path)
            continue
        report.catalogs += 1
        for pair in pairs:
            if pair in seen:
                report.skipped["duplicate"] += 1
                continue
            seen.add(pair)
            report.pairs += 1
            yield {"text": pair[0], "target": pair[1], "domain": domain}


def write_translation_corpus(
    lang: str,
    out_dir: str,
    locale_dir: str = LOCALE_DIR,
    max_documents: int | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> tuple[str, CatalogReport]:
    """Writes the (English, translation) pairs of `lang`'s gettext
    catalogs as gzipped JSON Lines, `{out_dir}/translations-<lang>.jsonl.gz`
    (atomically, deterministic bytes).

    Args:
        lang: the language, e.g. "de".
        out_dir: the local directory to write to.
        locale_dir: the directory holding `<lang>/LC_MESSAGES/*.mo`.
        max_documents: keep only the first this many pairs; None keeps all.
        max_chars: pairs with a longer side are skipped.

    Returns:
        The path written and what was read and skipped.

    Raises:
        FileNotFoundError: no catalog of `lang` (the message says where it
            looked and what to do).
        ValueError: `max_chars` is not positive.
    """
    _check_max_documents(max_documents)
    if max_chars < 1:
        raise ValueError(
            f"max_chars={max_chars!r} is not positive. Fix: pass the longest "
            "string to keep, e.g. 200."
        )
    report = CatalogReport()
    records = translation_records(lang, locale_dir, max_chars, report)
    path = _write_jsonl_gz(
        records,
        out_dir,
        TRANSLATIONS_FILE_NAME.format(lang=lang),
        max_documents,
    )
    return path, report


def describe(path: str, report: CatalogReport) -> str:
    """A one-line JSON summary of a written translation corpus."""
    return json.dumps(
        {
            "path": path,
            "catalogs": report.catalogs,
            "unreadable_catalogs": len(report.unreadable),
            "pairs": report.pairs,
            "skipped": dict(sorted(report.skipped.items())),
        }
    )
