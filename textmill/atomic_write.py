"""Writing a file so that readers never see it half-written."""

import os

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def write_atomically(path: str, data: bytes) -> None:
    """Writes bytes to a file so that readers never see a partial file.

    The bytes go to a temporary name beside `path`, which is then renamed.

    Args:
        path: the destination file, local or `gs://`.
        data: the file content.
    """
    temp_path = f"{path}.tmp-{os.getpid()}"
    with FileSystems.create(
        temp_path, compression_type=CompressionTypes.UNCOMPRESSED
    ) as f:
        f.write(data)
    # A local rename replaces `path` atomically; on GCS it is copy + delete,
    # and the copy replaces the object in one step.
    FileSystems.rename([temp_path], [path])
