"""Text normalisation, length filtering, content ids and split assignment.

A document's target (such as its summary, when TextExampleGen reads a
`target_field`) is normalised like its text; the length filters apply to the
text only, and a target left empty is dropped as `empty_target`.
"""

import hashlib
import unicodedata

EMPTY_AFTER_NORMALIZATION = "empty_after_normalization"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
# The document's target (such as a summary) holds only whitespace.
EMPTY_TARGET = "empty_target"
# Reasons a document is dropped after normalisation, in report order.
FILTER_REASONS = (EMPTY_AFTER_NORMALIZATION, TOO_SHORT, TOO_LONG, EMPTY_TARGET)

# Characters of a document quoted in skip details.
_PREVIEW_CHARS = 60


def normalize_text(text: str) -> str:
    """Normalises Unicode and whitespace.

    Applies Unicode NFC; within each line collapses runs of whitespace
    (spaces, tabs, no-break spaces, ...) to one space and strips the line;
    keeps paragraph breaks as exactly one blank line; strips both ends.
    Line breaks are any of `str.splitlines()`'s (`\\n`, `\\r\\n`, `\\r`,
    `\\u2028`, ...).

    Args:
        text: the raw document.

    Returns:
        The normalised document; empty if `text` holds only whitespace.
    """
    paragraphs = []
    lines = []
    for line in unicodedata.normalize("NFC", text).splitlines():
        line = " ".join(line.split())
        if line:
            lines.append(line)
        elif lines:
            paragraphs.append("\n".join(lines))
            lines = []
    if lines:
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def filter_reason(
    text: str, min_chars: int, max_chars: int, target: str | None = None
) -> tuple[str, str] | None:
    """Says why a normalised document is dropped, if it is.

    The text is checked first (`empty_after_normalization`, `too_short`,
    `too_long`), then the target, if there is one: `empty_target` means the
    target, such as a summary, held only whitespace (fix: give every record
    a non-empty target). The length limits apply to the text only.

    Args:
        text: a normalised document.
        min_chars: the fewest characters a kept document has.
        max_chars: the most characters a kept document has.
        target: the document's normalised target, or None if it has none.

    Returns:
        None to keep the document, else `(reason, detail)` with reason one
        of `FILTER_REASONS`.
    """
    if not text:
        return EMPTY_AFTER_NORMALIZATION, "no text left after normalisation"
    preview = text[:_PREVIEW_CHARS]
    if len(text) < min_chars:
        return (
            TOO_SHORT,
            f"{len(text)} chars < min_chars={min_chars}: {preview!r}",
        )
    if len(text) > max_chars:
        return (
            TOO_LONG,
            f"{len(text)} chars > max_chars={max_chars}: {preview!r}",
        )
    if target is not None and not target:
        return (
            EMPTY_TARGET,
            f"no target left after normalisation; text: {preview!r}",
        )
    return None


def doc_id(text: str) -> str:
    """Returns the content id of a normalised document.

    Args:
        text: a normalised document.

    Returns:
        The first 16 hex characters of the SHA-256 of its UTF-8 bytes.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def is_eval(document_id: str, eval_fraction: float) -> bool:
    """Assigns a document to the eval split by a hash of its id.

    The assignment depends only on the id, never on worker count or order.

    Args:
        document_id: the document's `doc_id`.
        eval_fraction: the expected fraction of documents in eval, in (0, 1).

    Returns:
        True for eval, False for train.
    """
    digest = hashlib.sha256(f"split:{document_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2.0**64  # uniform in [0, 1)
    return bucket < eval_fraction
