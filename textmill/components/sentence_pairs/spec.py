"""SentencePairGen's component spec and its parameter and channel keys."""

from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

EXAMPLES_KEY = "examples"
SENTENCE_PAIRS_KEY = "sentence_pairs"
TARGET_LENGTH_KEY = "target_length"
LENGTH_UNIT_KEY = "length_unit"
SHORT_SEQ_PROB_KEY = "short_seq_prob"
MAX_SENTENCE_CHARS_KEY = "max_sentence_chars"
SEED_KEY = "seed"


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
