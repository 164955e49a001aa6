"""SentencePairGen's component spec and its parameter and channel keys."""

from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from textmill.features import (
    EXAMPLES_KEY,
    LENGTH_UNIT_KEY,
    MAX_SENTENCE_CHARS_KEY,
    SEED_KEY,
    SENTENCE_PAIRS_KEY,
    SHORT_SEQ_PROB_KEY,
    TARGET_LENGTH_KEY,
)


class SentencePairGenSpec(types.ComponentSpec):
    """Inputs, outputs and parameters of SentencePairGen.

    See `SentencePairGen` for every parameter.
    """

    PARAMETERS = {
        TARGET_LENGTH_KEY: ExecutionParameter(type=int),
        LENGTH_UNIT_KEY: ExecutionParameter(type=str),
        SHORT_SEQ_PROB_KEY: ExecutionParameter(type=float),
        MAX_SENTENCE_CHARS_KEY: ExecutionParameter(type=int),
        SEED_KEY: ExecutionParameter(type=int),
    }
    INPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {
        SENTENCE_PAIRS_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }
