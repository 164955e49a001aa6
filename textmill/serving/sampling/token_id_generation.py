"""Greedy generation on token ids, for graphs without a tokenizer (TFLite).

The whole request is one graph of dense ops: prefix the begin-of-text
token, keep each prompt's last tokens that fit, decode greedily with the
cache, and cut out the new tokens. Tokenization happens outside (the
TFLite runner reads the tokenizer files shipped beside the model).
"""

from __future__ import annotations

import tensorflow as tf

from textmill.serving.sampling.sample_search import sample_search
from textmill.serving.signatures import GENERATE_IDS  # noqa: F401  (re-export)

INPUT_SPECS = [
    tf.TensorSpec([None, None], tf.int32, name="prompt_ids"),
    tf.TensorSpec([None], tf.int32, name="prompt_lengths"),
    tf.TensorSpec([], tf.int32, name="max_new_tokens"),
]
# Fills `new_token_ids` after each row's last new token.
NO_TOKEN = -1


def generate_token_ids(
    model,
    prompt_ids: tf.Tensor,
    prompt_lengths: tf.Tensor,
    max_new_tokens: tf.Tensor,
    bos_id: int,
    stop_token_id: int,
    max_length: int,
) -> dict:
    """Greedy continuation of right-padded token-id prompts.

    Args:
        model: a keras-hub GPT-2 family causal LM.
        prompt_ids: int32 `[batch, width]`, right-padded, without the
            begin-of-text token.
        prompt_lengths: int32 `[batch]`.
        max_new_tokens: int32 scalar, clipped to `[1, max_length - 1]`.
        bos_id: the token put before each prompt.
        stop_token_id: a row ends after this token.
        max_length: the model's longest sequence; a prompt keeps its last
            `max_length - 1 - max_new_tokens` tokens.

    Returns:
        `new_token_ids` int32 `[batch, max_new_tokens]` (the stop token
        included when generated, then `NO_TOKEN`), `token_scores` float32
        `[batch, max_new_tokens]` (model log-probs, then 0) and
        `num_new_tokens` int32 `[batch]`.
    """
    max_new_tokens = tf.clip_by_value(max_new_tokens, 1, max_length - 1)
    keep = max_length - 1 - max_new_tokens
    first = tf.maximum(prompt_lengths - keep, 0)  # first kept prompt token
    lengths = prompt_lengths - first + 1  # with the begin-of-text token
    width = tf.reduce_max(lengths)
    column = tf.range(width)[None, :]
    source = tf.clip_by_value(
        first[:, None] + column - 1, 0, tf.shape(prompt_ids)[1] - 1
    )
    ids = tf.gather(prompt_ids, source, batch_dims=1)
    ids = tf.where(tf.equal(column, 0), bos_id, ids)
    ids = tf.where(column < lengths[:, None], ids, 0)
    token_ids, scores, ends = sample_search(
        model,
        ids,
        lengths,
        width + max_new_tokens,
        max_new_tokens,
        tf.constant(stop_token_id, tf.int32),
        sample=False,
        tf_kernels=False,
    )
    # [batch, max_new_tokens] positions of the new tokens.
    position = lengths[:, None] + tf.range(max_new_tokens)[None, :]
    generated = position < ends[:, None]
    position = tf.minimum(position, tf.shape(token_ids)[1] - 1)
    return {
        "new_token_ids": tf.where(
            generated, tf.gather(token_ids, position, batch_dims=1), NO_TOKEN
        ),
        "token_scores": tf.where(
            generated, tf.gather(scores, position, batch_dims=1), 0.0
        ),
        "num_new_tokens": ends - lengths,
    }
