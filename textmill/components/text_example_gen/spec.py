"""TextExampleGen's component spec and its parameter and output keys."""

from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from textmill.features import (
    EVAL_FRACTION_KEY,
    EXAMPLES_KEY,
    INPUT_FINGERPRINT_KEY,
    INPUT_FORMAT_KEY,
    INPUT_PATTERNS_KEY,
    MAX_CHARS_KEY,
    MIN_CHARS_KEY,
    STRICT_KEY,
    TARGET_FIELD_KEY,
    TEXT_FIELD_KEY,
    TEXT_UNIT_KEY,
)


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
