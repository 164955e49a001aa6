"""Contrastive search with a key-value cache.

Each step takes the `top_k` most likely tokens, runs the model on each of
them, and keeps the candidate with the best

    (1 - penalty_alpha) * probability
        - penalty_alpha * max cosine similarity of its hidden state to the
          hidden states of all earlier positions,

which favours likely tokens that do not repeat what came before.
Reference: Su et al., "A Contrastive Framework for Neural Text
Generation", 2022.
"""

from __future__ import annotations

import tensorflow as tf

from textmill.serving.sampling import decode_ops


def contrastive_search(
    model,
    prompt_ids: tf.Tensor,
    prompt_lengths: tf.Tensor,
    total_length,
    max_new_tokens,
    stop_token_id,
    top_k,
    penalty_alpha,
    tf_kernels: bool = True,
):
    """Continues right-padded prompts by contrastive search.

    Args:
        model: a keras-hub GPT-2 family causal LM.
        prompt_ids: int32 `[batch, width]`, right-padded (see `decode_ops`).
        prompt_lengths: int32 `[batch]`, each >= 1.
        total_length: int32 scalar (see `sample_search`).
        max_new_tokens: int32 scalar.
        stop_token_id: int32 scalar (< 0: never stop).
        top_k: int32 scalar >= 1, candidates per step.
        penalty_alpha: float32 scalar in [0, 1].
        tf_kernels: see `decode_ops.forward` (False under XLA).

    Returns:
        As `sample_search`.
    """
    batch = tf.shape(prompt_ids)[0]
    width = tf.shape(prompt_ids)[1]
    token_ids = tf.pad(prompt_ids, [[0, 0], [0, total_length - width]])
    start = tf.reduce_min(prompt_lengths)
    steps = decode_ops.cached_steps(model, tf_kernels)
    logits, hidden, cache = steps.prefill(  # logits: [batch, vocab]
        prompt_ids, total_length, start - 1
    )
    # Unit-length hidden state of every position: [batch, total, hidden].
    history = tf.pad(
        tf.math.l2_normalize(hidden, axis=-1),
        [[0, 0], [0, total_length - width], [0, 0]],
    )
    limits = tf.minimum(prompt_lengths + max_new_tokens, total_length)
    positions = tf.range(total_length)

    def unfinished(index, token_ids, scores, done, *_):
        return tf.logical_not(tf.reduce_all(done))

    def step(index, token_ids, scores, done, ends, history, logits, cache):
        probs, candidates = tf.math.top_k(tf.nn.softmax(logits), top_k)
        forced = index < prompt_lengths
        prompt_token = tf.gather(token_ids, index, axis=1)
        # Forced rows run their prompt token (in every candidate slot).
        candidates = tf.where(
            forced[:, None], prompt_token[:, None], candidates
        )
        # [batch, top_k] -> [batch * top_k]
        next_logits, next_hidden, next_cache = steps.decode_step(
            tf.reshape(candidates, [-1]),
            decode_ops.repeat_rows(cache, top_k),
            index,
        )
        unit = tf.reshape(
            tf.math.l2_normalize(next_hidden, axis=-1), [batch, top_k, -1]
        )
        similarity = tf.einsum("bkd,bld->bkl", unit, history)
        earlier = positions < index
        penalty = tf.reduce_max(
            tf.where(earlier, similarity, -float("inf")), axis=-1
        )
        score = (1.0 - penalty_alpha) * probs - penalty_alpha * penalty
        new = tf.logical_not(forced | done)
        choice = tf.where(
            new, tf.argmax(score, axis=-1, output_type=tf.int32), 0
        )
        token = tf.gather(candidates, choice, batch_dims=1)
        rows = choice + tf.range(batch) * top_k
        token_score = tf.where(
            new, decode_ops.token_log_probs(logits, token), 0.0
        )
        finished = new & (
            decode_ops.is_stop(token, stop_token_id) | (index + 1 >= limits)
        )
        history = tf.where(
            tf.equal(positions, index)[None, :, None],
            tf.gather(unit, choice, batch_dims=1)[:, None],
            history,
        )
        return (
            index + 1,
            decode_ops.set_column(
                token_ids,
                index,
                tf.where(forced | new, token, decode_ops.PAD_ID),
            ),
            decode_ops.set_column(scores, index, token_score),
            done | finished,
            tf.where(finished, index + 1, ends),
            history,
            tf.gather(next_logits, rows),
            decode_ops.gather_rows(next_cache, rows),
        )

    state = (
        start,
        token_ids,
        tf.zeros(tf.shape(token_ids), tf.float32),
        tf.zeros([batch], tf.bool),
        prompt_lengths,
        history,
        logits,
        cache,
    )
    _, token_ids, scores, _, ends, _, _, _ = tf.while_loop(
        unfinished, step, state
    )
    return token_ids, scores, ends
