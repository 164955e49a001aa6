"""TextExampleGen's component spec and its parameter and output keys."""

from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

INPUT_PATTERNS_KEY = "input_patterns"
INPUT_FORMAT_KEY = "input_format"
TEXT_FIELD_KEY = "text_field"
TEXT_UNIT_KEY = "text_unit"
MIN_CHARS_KEY = "min_chars"
MAX_CHARS_KEY = "max_chars"
EVAL_FRACTION_KEY = "eval_fraction"
STRICT_KEY = "strict"
# Optional, default "": the JSON field or CSV column of each record's target
# (such as a summary). Absent when empty, so that runs without a target keep
# their execution properties, and so their cache keys.
TARGET_FIELD_KEY = "target_field"
# Set by the driver, never by the user: a fingerprint of the matched files
# (paths, sizes, mtimes), so that the cache key changes with the input.
INPUT_FINGERPRINT_KEY = "input_fingerprint"
EXAMPLES_KEY = "examples"


class TextExampleGenSpec(types.ComponentSpec):
    """Parameters and outputs of TextExampleGen.

    `input_patterns` is a JSON list of file patterns; `target_field` is
    optional and an absent one means "" (no target). See `TextExampleGen`
    for every parameter.
    """

    PARAMETERS = {
        INPUT_PATTERNS_KEY: ExecutionParameter(type=str),
        INPUT_FORMAT_KEY: ExecutionParameter(type=str),
        TEXT_FIELD_KEY: ExecutionParameter(type=str),
        TEXT_UNIT_KEY: ExecutionParameter(type=str),
        MIN_CHARS_KEY: ExecutionParameter(type=int),
        MAX_CHARS_KEY: ExecutionParameter(type=int),
        EVAL_FRACTION_KEY: ExecutionParameter(type=float),
        STRICT_KEY: ExecutionParameter(type=bool),
        TARGET_FIELD_KEY: ExecutionParameter(type=str, optional=True),
        INPUT_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }
