"""File matching and input fingerprints on any filesystem.

Every function goes through Beam's `FileSystems`, so local paths and
`gs://` URIs behave the same way.
"""

import hashlib
import json
import os
from collections.abc import Sequence

from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.filesystems import FileSystems

from textmill.components.text_example_gen.ingest_error import IngestError


def match_patterns(patterns: Sequence[str]) -> list[FileMetadata]:
    """Matches file patterns and returns the files, sorted and de-duplicated.

    Args:
        patterns: file paths or glob patterns, local or `gs://`.

    Returns:
        The metadata (path, size, mtime) of every matched file, sorted by
        path; a file matched by several patterns appears once. Directories
        are not files: `data/` matches nothing, `data/*` matches its files.

    Raises:
        IngestError: if a pattern matches no file.
    """
    files = {}
    for pattern in patterns:
        matched = [
            metadata
            for result in FileSystems.match([pattern])
            for metadata in result.metadata_list
            if not os.path.isdir(metadata.path)
        ]
        if not matched:
            raise IngestError(
                f"input_patterns: the pattern {pattern!r} matches no file. "
                "Fix: check the path (a directory needs a glob such as "
                f"{os.path.join(pattern, '*')!r}) or remove the pattern."
            )
        files.update((metadata.path, metadata) for metadata in matched)
    return [files[path] for path in sorted(files)]


def input_fingerprint(patterns: Sequence[str]) -> str:
    """Returns a cheap fingerprint of the files the patterns match.

    The fingerprint hashes each matched file's path, size and modification
    time, not its content, so it costs one listing per pattern.

    Args:
        patterns: file paths or glob patterns, local or `gs://`.

    Returns:
        A string `files:<count>,bytes:<total>,sha256:<hex>`.

    Raises:
        IngestError: if a pattern matches no file.
    """
    files = match_patterns(patterns)
    listing = [
        [
            metadata.path,
            metadata.size_in_bytes,
            metadata.last_updated_in_seconds,
        ]
        for metadata in files
    ]
    digest = hashlib.sha256(json.dumps(listing).encode("utf-8")).hexdigest()
    total_bytes = sum(metadata.size_in_bytes for metadata in files)
    return f"files:{len(files)},bytes:{total_bytes},sha256:{digest}"
