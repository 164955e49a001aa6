"""Beam search with a key-value cache."""

from __future__ import annotations

import tensorflow as tf

from textmill.serving.sampling import decode_ops


def beam_search(
    model,
    prompt_ids: tf.Tensor,
    prompt_lengths: tf.Tensor,
    total_length,
    max_new_tokens,
    stop_token_id,
    num_beams,
    tf_kernels: bool = True,
):
    """Keeps the `num_beams` most likely continuations of each prompt.

    A beam's score is the sum of the model's log-probabilities of its new
    tokens (the stop token included), with no length penalty. A beam that
    emits the stop token, or reaches `max_new_tokens`, is finished: it keeps
    its score and competes with the longer beams until every beam of its
    prompt is finished.

    Args:
        model: a keras-hub GPT-2 family causal LM.
        prompt_ids: int32 `[batch, width]`, right-padded (see `decode_ops`).
        prompt_lengths: int32 `[batch]`, each >= 1.
        total_length: int32 scalar (see `sample_search`).
        max_new_tokens: int32 scalar.
        stop_token_id: int32 scalar (< 0: never stop).
        num_beams: int32 scalar >= 1, at most the vocabulary size.
        tf_kernels: see `decode_ops.forward` (False under XLA).

    Returns:
        `(token_ids [batch, num_beams, total_length], token_scores [batch,
        num_beams, total_length], ends [batch, num_beams], sequence_scores
        [batch, num_beams])`, beams sorted best first.
    """
    batch = tf.shape(prompt_ids)[0]
    width = tf.shape(prompt_ids)[1]
    beams = num_beams
    start = tf.reduce_min(prompt_lengths)
    steps = decode_ops.cached_steps(model, tf_kernels)
    logits, _, cache = steps.prefill(  # logits: [batch, vocab]
        prompt_ids, total_length, start - 1
    )
    vocab = tf.shape(logits)[-1]
    # Each prompt is decoded by `beams` rows: [batch, ...] -> [batch*beams].
    logits = tf.repeat(logits, beams, axis=0)
    cache = decode_ops.repeat_rows(cache, beams)
    token_ids = tf.repeat(
        tf.pad(prompt_ids, [[0, 0], [0, total_length - width]])[:, None],
        beams,
        axis=1,
    )  # [batch, beams, total_length]
    # Until a prompt's first new token its beams are copies: only beam 0
    # may extend it.
    first_beam = tf.equal(tf.range(beams), 0)
    scores = tf.where(first_beam, 0.0, -float("inf"))
    scores = tf.tile(scores[None], [batch, 1])  # [batch, beams]
    lengths = prompt_lengths[:, None]
    limits = tf.minimum(lengths + max_new_tokens, total_length)
    pad_only = tf.where(
        tf.equal(tf.range(vocab), decode_ops.PAD_ID), 0.0, -float("inf")
    )  # [vocab]

    def unfinished(index, token_ids, token_scores, scores, done, ends, *_):
        return tf.logical_not(tf.reduce_all(done))

    def step(index, token_ids, token_scores, scores, done, ends, logits, cache):
        log_probs = tf.reshape(tf.nn.log_softmax(logits), [batch, beams, -1])
        # A finished beam's only continuation is padding, at no cost.
        extension = tf.where(done[..., None], pad_only, log_probs)
        candidates = tf.reshape(scores[..., None] + extension, [batch, -1])
        best, flat = tf.math.top_k(candidates, beams)  # [batch, beams]
        forced = index < lengths  # [batch, 1]
        parent = tf.where(forced, tf.range(beams)[None], flat // vocab)
        prompt_token = tf.gather(token_ids, index, axis=2)
        token = tf.where(forced, prompt_token, flat % vocab)
        scores = tf.where(forced, scores, best)
        token_ids, token_scores, done, ends, log_probs = (
            tf.gather(x, parent, batch_dims=1)
            for x in (token_ids, token_scores, done, ends, log_probs)
        )
        new = tf.logical_not(forced | done)
        score = tf.where(new, tf.gather(log_probs, token, batch_dims=2), 0.0)
        finished = new & (
            decode_ops.is_stop(token, stop_token_id) | (index + 1 >= limits)
        )
        rows = tf.reshape(parent + tf.range(batch)[:, None] * beams, [-1])
        token_ids = decode_ops.set_column(token_ids, index, token)
        last = tf.reshape(token, [-1])
        logits, _, cache = steps.decode_step(
            last,
            decode_ops.gather_rows(cache, rows),
            index,
        )
        return (
            index + 1,
            token_ids,
            decode_ops.set_column(token_scores, index, score),
            scores,
            done | finished,
            tf.where(finished, index + 1, ends),
            logits,
            cache,
        )

    state = (
        start,
        token_ids,
        tf.zeros(tf.shape(token_ids), tf.float32),
        scores,
        tf.zeros([batch, beams], tf.bool),
        tf.tile(lengths, [1, beams]),
        logits,
        cache,
    )
    _, token_ids, token_scores, scores, _, ends, _, _ = tf.while_loop(
        unfinished, step, state
    )
    order = tf.argsort(scores, axis=-1, direction="DESCENDING", stable=True)
    token_ids, token_scores, ends, scores = (
        tf.gather(x, order, batch_dims=1)
        for x in (token_ids, token_scores, ends, scores)
    )
    return token_ids, token_scores, ends, scores
