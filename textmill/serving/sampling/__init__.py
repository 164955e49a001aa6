"""Text generation: greedy, sampling, beam and contrastive search with a
key-value cache, in TensorFlow ops that compile with XLA and export."""

from textmill.serving.sampling.causal_lm_generator import (
    CausalLMGenerator,
    generate,
    right_align,
)
from textmill.serving.sampling.generation_output import GenerationOutput
from textmill.serving.sampling.sampler_settings import (
    STRATEGIES,
    SamplerSettings,
)

__all__ = [
    "STRATEGIES",
    "CausalLMGenerator",
    "GenerationOutput",
    "SamplerSettings",
    "generate",
    "right_align",
]
