"""What a decoding run returns."""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf


class GenerationOutput(NamedTuple):
    """Prompts with their continuations, and the model's scores.

    Beam search with `return_all_beams` adds a beam axis after the batch
    axis to every field (beams sorted best first).

    Args:
        token_ids: int32 `[batch, length]`: each prompt from position 0
            (its padding moved after it), its new tokens, then padding.
        generated_mask: bool, same shape: True at the new tokens (the stop
            token included when it was generated).
        token_scores: float32, same shape: the model's log-probability of
            each new token given everything before it (0 elsewhere).
        sequence_scores: float32 `[batch]`: the sum of `token_scores`.
    """

    token_ids: tf.Tensor
    generated_mask: tf.Tensor
    token_scores: tf.Tensor
    sequence_scores: tf.Tensor
