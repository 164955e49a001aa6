"""Greedy decoding and sampling with a key-value cache."""

from __future__ import annotations

import tensorflow as tf

from textmill.serving.sampling import decode_ops
from textmill.serving.sampling.token_filters import choose_tokens


def sample_search(
    model,
    prompt_ids: tf.Tensor,
    prompt_lengths: tf.Tensor,
    total_length,
    max_new_tokens,
    stop_token_id,
    sample: bool,
    temperature=None,
    top_k=None,
    top_p=None,
    seed=None,
    tf_kernels: bool = True,
):
    """Continues right-padded prompts one token per step.

    Args:
        model: a keras-hub GPT-2 family causal LM.
        prompt_ids: int32 `[batch, width]`, right-padded (see `decode_ops`).
        prompt_lengths: int32 `[batch]`, each >= 1.
        total_length: int32 scalar, positions in the output (>= width and
            >= each prompt length + `max_new_tokens`).
        max_new_tokens: int32 scalar, the most new tokens per row.
        stop_token_id: int32 scalar; a row ends after this token (< 0:
            never).
        sample: False for greedy decoding, True for sampling.
        temperature, top_k, top_p: sampling knobs (see `token_filters`).
        seed: int64 `[2]`; step `t` draws with the seed folded with `t`.
        tf_kernels: see `decode_ops.forward` (False for TFLite and under
            XLA).

    Returns:
        `(token_ids [batch, total_length], token_scores [batch,
        total_length], ends [batch])`: prompts followed by the new tokens
        (then `PAD_ID`), the model log-probability of each new token (0
        elsewhere), and the position after each row's last new token.
    """
    batch = tf.shape(prompt_ids)[0]
    width = tf.shape(prompt_ids)[1]
    token_ids = tf.pad(prompt_ids, [[0, 0], [0, total_length - width]])
    start = tf.reduce_min(prompt_lengths)
    # Logits of the first position to fill: [batch, vocab].
    logits, _, cache = decode_ops.prefill(
        model, prompt_ids, total_length, start - 1, tf_kernels
    )
    limits = tf.minimum(prompt_lengths + max_new_tokens, total_length)

    def fill(index, token_ids, scores, done, ends, logits):
        """Writes position `index` of every row."""
        step_seed = None
        if sample:
            step_seed = tf.random.experimental.stateless_fold_in(seed, index)
        chosen = choose_tokens(
            logits, sample, temperature, top_k, top_p, step_seed
        )
        forced = index < prompt_lengths
        new = tf.logical_not(forced | done)
        prompt_token = tf.gather(token_ids, index, axis=1)
        token = tf.where(
            forced, prompt_token, tf.where(new, chosen, decode_ops.PAD_ID)
        )
        score = tf.where(new, decode_ops.token_log_probs(logits, token), 0.0)
        finished = new & (
            decode_ops.is_stop(token, stop_token_id) | (index + 1 >= limits)
        )
        return (
            index + 1,
            decode_ops.set_column(token_ids, index, token),
            decode_ops.set_column(scores, index, score),
            done | finished,
            tf.where(finished, index + 1, ends),
        )

    scores = tf.zeros(tf.shape(token_ids), tf.float32)
    done = tf.zeros([batch], tf.bool)
    state = fill(start, token_ids, scores, done, prompt_lengths, logits)

    def unfinished(index, token_ids, scores, done, ends, cache):
        return tf.logical_not(tf.reduce_all(done))

    def step(index, token_ids, scores, done, ends, cache):
        last = tf.gather(token_ids, index - 1, axis=1)
        logits, _, cache = decode_ops.decode_step(
            model, last, cache, index - 1, tf_kernels
        )
        return (*fill(index, token_ids, scores, done, ends, logits), cache)

    _, token_ids, scores, _, ends, _ = tf.while_loop(
        unfinished, step, (*state, cache)
    )
    return token_ids, scores, ends
