"""Fixtures every test directory shares: gettext `.mo` catalogs written
in the file format's own layout (GNU gettext manual, "The Format of GNU MO
Files"), for the translation corpus and family."""

from __future__ import annotations

import os
import struct

import pytest

MAGIC = 0x950412DE


def mo_bytes(
    entries: list[tuple[bytes, bytes]], byte_order: str = "<"
) -> bytes:
    """A `.mo` catalog of (original, translation) byte strings.

    Args:
        entries: the catalog's entries; the header is the one with an
            empty original.
        byte_order: "<" (little-endian) or ">" (big-endian).
    """
    entries = sorted(entries)
    count = len(entries)
    originals_at = 28
    translations_at = originals_at + 8 * count
    data_at = translations_at + 8 * count
    tables = {0: [], 1: []}
    blob = b""
    for side in (0, 1):
        for entry in entries:
            tables[side].append((len(entry[side]), data_at + len(blob)))
            blob += entry[side] + b"\x00"
    header = struct.pack(
        byte_order + "7I", MAGIC, 0, count, originals_at, translations_at, 0, 0
    )
    table_bytes = b"".join(
        struct.pack(byte_order + "2I", *row)
        for side in (0, 1)
        for row in tables[side]
    )
    return header + table_bytes + blob


def header(charset: str = "UTF-8") -> tuple[bytes, bytes]:
    """A catalog header entry declaring `charset`."""
    return (
        b"",
        (
            "Project-Id-Version: test 1.0\n"
            "MIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset={charset}\n"
        ).encode("ascii"),
    )


def write_catalog(
    locale_dir: str,
    lang: str,
    domain: str,
    pairs: list[tuple[str, str]],
    charset: str = "UTF-8",
    extra: list[tuple[bytes, bytes]] = (),
) -> str:
    """Writes `<locale_dir>/<lang>/LC_MESSAGES/<domain>.mo` with a header,
    `pairs` (encoded in `charset`) and `extra` raw entries; returns its
    path."""
    entries = [header(charset)]
    entries += [
        (source.encode("utf-8"), target.encode(charset))
        for source, target in pairs
    ]
    entries += list(extra)
    directory = os.path.join(locale_dir, lang, "LC_MESSAGES")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{domain}.mo")
    with open(path, "wb") as f:
        f.write(mo_bytes(entries))
    return path


@pytest.fixture(name="mo_bytes", scope="session")
def mo_bytes_fixture():
    """`mo_bytes(entries, byte_order)`: a catalog's bytes."""
    return mo_bytes


@pytest.fixture(name="write_catalog", scope="session")
def write_catalog_fixture():
    """`write_catalog(locale_dir, lang, domain, pairs, ...)`: writes a
    catalog file and returns its path."""
    return write_catalog
