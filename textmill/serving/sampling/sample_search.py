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
        seed: int64 `[2]`; step `t` draws with the seed folded with the
            shortest prompt's length + `t`.
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
    # Prompts, then PAD_ID: a row writes nothing once it is done.
    token_ids = tf.where(
        tf.range(total_length)[None, :] < prompt_lengths[:, None],
        tf.pad(prompt_ids, [[0, 0], [0, total_length - width]]),
        decode_ops.PAD_ID,
    )
    # Each row's next position to fill. With a position per row, each row
    # starts after its own prompt; otherwise all rows move together from
    # the end of the shortest prompt, the longer ones copying theirs (one
    # step per copied token: the cost of XLA loops and TFLite, whose cache
    # writes take one position for all rows).
    steps = decode_ops.cached_steps(model, tf_kernels)
    per_row = steps.per_row_positions
    if per_row:
        positions = prompt_lengths
    else:
        positions = tf.fill([batch], tf.reduce_min(prompt_lengths))

    def model_index(positions):
        return positions if per_row else positions[0]

    # The prefill covers the prompts whole; logits: [batch, vocab].
    logits, _, cache = steps.prefill(
        prompt_ids, total_length, model_index(positions) - 1
    )
    limits = tf.minimum(prompt_lengths + max_new_tokens, total_length)

    def fill(positions, token_ids, scores, done, ends, logits):
        """Writes position `positions[row]` of every row."""
        step_seed = None
        if sample:
            # Step t draws with the seed folded with the shortest
            # prompt's length + t, in either mode.
            step_seed = tf.random.experimental.stateless_fold_in(
                seed, tf.reduce_min(positions)
            )
        chosen = choose_tokens(
            logits, sample, temperature, top_k, top_p, step_seed
        )
        new = tf.logical_not((positions < prompt_lengths) | done)
        # Rows not choosing (copying their prompt, or done) keep what
        # their position holds.
        token = tf.where(new, chosen, _at(token_ids, positions))
        score = tf.where(
            new,
            decode_ops.token_log_probs(logits, token),
            _at(scores, positions),
        )
        finished = new & (
            decode_ops.is_stop(token, stop_token_id) | (positions + 1 >= limits)
        )
        return (
            # A done row may reach the end of the buffer before the others.
            tf.minimum(positions + 1, total_length - 1),
            decode_ops.set_column(token_ids, positions, token),
            decode_ops.set_column(scores, positions, score),
            done | finished,
            tf.where(finished, positions + 1, ends),
        )

    scores = tf.zeros(tf.shape(token_ids), tf.float32)
    done = tf.zeros([batch], tf.bool)
    state = fill(positions, token_ids, scores, done, prompt_lengths, logits)

    def unfinished(positions, token_ids, scores, done, ends, cache):
        return tf.logical_not(tf.reduce_all(done))

    def step(positions, token_ids, scores, done, ends, cache):
        last = _at(token_ids, positions - 1)
        logits, _, cache = steps.decode_step(
            last, cache, model_index(positions) - 1
        )
        return (*fill(positions, token_ids, scores, done, ends, logits), cache)

    _, token_ids, scores, _, ends, _ = tf.while_loop(
        unfinished, step, (*state, cache)
    )
    return token_ids, scores, ends


def _at(buffer: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """`buffer[row, positions[row]]` for each row of a `[batch, length]`
    buffer."""
    return tf.gather(buffer, positions[:, None], batch_dims=1)[:, 0]
