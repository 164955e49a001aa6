"""TextExampleGen's driver: fingerprints the input files before caching."""

import json

from tfx.dsl.components.base import base_driver
from tfx.orchestration.portable import base_driver as portable_base_driver
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import driver_output_pb2

from textmill.components.text_example_gen import files, spec


class TextExampleGenDriver(
    base_driver.BaseDriver, portable_base_driver.BaseDriver
):
    """Adds the input fingerprint to the execution properties.

    The launcher runs a node's driver before it looks up the cache, and the
    cache key hashes every execution property. Adding a fingerprint of the
    matched files (paths, sizes, mtimes) therefore re-runs TextExampleGen
    when an input file changes and reuses the cached output when none does,
    as TFX's FileBasedExampleGen does. It also fails fast, before Beam
    starts, when a pattern matches no file.

    Deriving from the legacy `base_driver.BaseDriver` is what lets a
    component name this class as its `DRIVER_CLASS`; only the portable
    `run()` is used.

    Args:
        metadata_handle: the ML Metadata connection.
    """

    def __init__(self, metadata_handle):
        base_driver.BaseDriver.__init__(self, metadata_handle)
        portable_base_driver.BaseDriver.__init__(self, metadata_handle)

    def run(
        self, execution_info: data_types.ExecutionInfo
    ) -> driver_output_pb2.DriverOutput:
        """Computes the fingerprint of the files the patterns match.

        Args:
            execution_info: the execution, with its properties.

        Returns:
            A driver output that sets `input_fingerprint`.

        Raises:
            IngestError: if a pattern matches no file.
        """
        patterns = json.loads(
            execution_info.exec_properties[spec.INPUT_PATTERNS_KEY]
        )
        output = driver_output_pb2.DriverOutput()
        output.exec_properties[
            spec.INPUT_FINGERPRINT_KEY
        ].string_value = files.input_fingerprint(patterns)
        return output
