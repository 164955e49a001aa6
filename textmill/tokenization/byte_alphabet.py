"""The byte <-> printable-character alphabet of byte-level BPE.

Byte-level BPE (GPT-2, RoBERTa) works on UTF-8 bytes, but its vocabulary and
merges files are text, one token per line and two tokens per merge separated
by a space. Each of the 256 byte values is therefore written as one printable
Unicode character: the printable Latin-1 bytes (`!`..`~`, `¡`..`¬`, `®`..`ÿ`)
stand for themselves and the 68 others (controls, space, `\\xa0`, soft
hyphen) are given the code points 256, 257, ... in increasing byte order.
A space is thus `Ġ` (U+0120) and a newline `Ċ` (U+010A).
"""

from __future__ import annotations

import functools

# Byte ranges (inclusive) whose Latin-1 character is printable and is used
# as is.
_PRINTABLE_RANGES = ((0x21, 0x7E), (0xA1, 0xAC), (0xAE, 0xFF))
# The first code point given to a byte whose character is not printable.
_FIRST_SUBSTITUTE = 256


@functools.cache
def byte_to_unicode() -> tuple[str, ...]:
    """The character standing for each byte value.

    Returns:
        A tuple of 256 one-character strings; item `b` stands for byte `b`.
    """
    printable = {
        byte for low, high in _PRINTABLE_RANGES for byte in range(low, high + 1)
    }
    characters = []
    next_substitute = _FIRST_SUBSTITUTE
    for byte in range(256):
        if byte in printable:
            characters.append(chr(byte))
        else:
            characters.append(chr(next_substitute))
            next_substitute += 1
    return tuple(characters)


@functools.cache
def unicode_to_byte() -> dict[str, int]:
    """The byte value each alphabet character stands for.

    Returns:
        A dict from each of the 256 alphabet characters to its byte value.
    """
    return {char: byte for byte, char in enumerate(byte_to_unicode())}


def bytes_to_symbols(data: bytes) -> str:
    """Writes bytes in the byte-level alphabet.

    Args:
        data: any bytes.

    Returns:
        A string with one alphabet character per byte of `data`.
    """
    alphabet = byte_to_unicode()
    return "".join(alphabet[byte] for byte in data)


def symbols_to_bytes(symbols: str) -> bytes:
    """Reads back bytes written in the byte-level alphabet.

    Args:
        symbols: a string of alphabet characters, e.g. a vocabulary token.

    Returns:
        The bytes the characters stand for.

    Raises:
        ValueError: if `symbols` holds a character outside the alphabet.
    """
    table = unicode_to_byte()
    try:
        return bytes(table[char] for char in symbols)
    except KeyError as error:
        raise ValueError(
            f"symbols={symbols!r} holds {error.args[0]!r}, which is not in "
            "the byte-level alphabet; pass a token made of "
            "byte_to_unicode() characters (special tokens are not)."
        ) from None
