from textmill.trainer.models.gpt2.gpt2_causal_lm import (
    build_gpt2_causal_lm,
    save_gpt2_preset,
)
from textmill.trainer.models.gpt2.gpt2_presets import GPT2_PRESETS

__all__ = ["GPT2_PRESETS", "build_gpt2_causal_lm", "save_gpt2_preset"]
