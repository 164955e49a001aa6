"""Next-token choice for greedy decoding and sampling, in TensorFlow ops.

Every knob is a tensor, so one traced (and XLA-compiled) function serves
all values; `top_k` and `top_p` are applied through one sort of the
vocabulary instead of `tf.math.top_k`, whose `k` XLA needs as a constant.
"""

from __future__ import annotations

import tensorflow as tf


def filter_logits(logits: tf.Tensor, top_k, top_p) -> tf.Tensor:
    """Sets the logits of tokens outside top-k and top-p to -inf.

    Args:
        logits: float32 `[rows, vocab]`.
        top_k: int32 scalar; keep the `top_k` largest logits (0 keeps all).
        top_p: float32 scalar in (0, 1]; then keep the smallest set of the
            largest logits whose probability (renormalised over the top-k
            set) reaches `top_p`. The most likely token is always kept.

    Returns:
        The filtered logits, same shape. Tokens tied with the last one kept
        are kept too.
    """
    vocab = tf.shape(logits)[-1]
    top_k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    ordered = tf.sort(logits, axis=-1, direction="DESCENDING")
    rank = tf.range(vocab)
    ordered = tf.where(rank < top_k, ordered, -float("inf"))
    # Probability mass of the tokens ranked before each token.
    mass_before = tf.cumsum(tf.nn.softmax(ordered), axis=-1, exclusive=True)
    kept = (rank < top_k) & (mass_before < top_p)
    threshold = tf.reduce_min(
        tf.where(kept, ordered, float("inf")), axis=-1, keepdims=True
    )
    return tf.where(logits >= threshold, logits, -float("inf"))


def choose_tokens(
    logits: tf.Tensor,
    sample: bool,
    temperature=None,
    top_k=None,
    top_p=None,
    seed=None,
) -> tf.Tensor:
    """The next token of each row.

    Args:
        logits: float32 `[rows, vocab]`.
        sample: False picks the most likely token (the other arguments are
            ignored); True draws from the tempered, filtered distribution.
        temperature: float32 scalar; 0 picks the most likely token.
        top_k: int32 scalar (see `filter_logits`).
        top_p: float32 scalar (see `filter_logits`).
        seed: int64 `[2]`, the seed of this step's draw.

    Returns:
        int32 `[rows]` token ids.
    """
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    if not sample:
        return greedy
    tempered = logits / tf.maximum(temperature, 1e-6)
    drawn = tf.random.stateless_categorical(
        filter_logits(tempered, top_k, top_p), 1, seed, dtype=tf.int32
    )[:, 0]
    return tf.where(temperature > 0, drawn, greedy)
