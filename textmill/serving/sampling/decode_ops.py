"""TensorFlow pieces shared by the decoding loops.

A decoding loop works on right-padded prompts: row `r` holds its prompt in
positions `[0, prompt_lengths[r])` of a `[batch, total_length]` buffer, so
each token sits at its position in the prompt alone. Every step fills one
position `t` for all rows: rows whose prompt is longer than `t` copy their
prompt token ("forced"), the others choose a new token. Causal attention
never looks past `t`, so the padding that a shorter row has at `t` is never
seen before it is overwritten, and no attention mask is needed.

The key-value cache holds one `[batch, 2, total_length, num_heads,
head_dim]` tensor per transformer layer, updated by keras-hub's cached
attention at the step's position.
"""

from __future__ import annotations

import tensorflow as tf

# Fills positions after a sequence's end (never read as text).
PAD_ID = 0


def check_cached_model(model) -> None:
    """Raises ValueError unless `model` has a GPT-2 style backbone.

    Args:
        model: a keras-hub causal LM.

    Raises:
        ValueError: the backbone lacks the layers the cached forward pass
            runs (token and position embeddings, transformer layers with a
            self-attention cache, final layer norm).
    """
    backbone = getattr(model, "backbone", None)
    needed = (
        "token_embedding",
        "position_embedding",
        "embeddings_add",
        "transformer_layers",
        "layer_norm",
        "num_heads",
        "hidden_dim",
    )
    if not all(hasattr(backbone, name) for name in needed):
        raise ValueError(
            f"model {type(model).__name__} cannot decode with a cache: pass a "
            "keras-hub GPT-2 family causal LM (GPT2CausalLM), whose backbone "
            f"has {', '.join(needed)}."
        )


def empty_cache(model, batch_size, total_length) -> tuple[tf.Tensor, ...]:
    """Zero caches for `total_length` positions, one per transformer layer.

    Each is `[batch, 2, total_length, num_heads, head_dim]` (keys, values),
    the layout of keras-hub's cached attention. Separate tensors per layer
    (instead of one stacked tensor) keep each step from copying the whole
    cache and stay within TFLite's 5-D limit.
    """
    backbone = model.backbone
    shape = [
        batch_size,
        2,
        total_length,
        backbone.num_heads,
        backbone.hidden_dim // backbone.num_heads,
    ]
    return tuple(
        tf.zeros(shape, model.compute_dtype)
        for _ in backbone.transformer_layers
    )


def forward(
    model, token_ids: tf.Tensor, cache: tuple, index, matvec: bool = True
):
    """The model on `token_ids` at positions `index, index + 1, ...`.

    Attention reads the cache up to each token's position and the cache is
    updated at those positions.

    Args:
        model: the causal LM.
        token_ids: int32 `[batch, length]`.
        cache: the per-layer caches (see `empty_cache`).
        index: int32 scalar, the position of the first token.
        matvec: run a single row's language-model head as a plain
            matrix-vector product (a `tf.cond`; False for TFLite, whose
            shape propagation through that conditional inside the decoding
            loop fails).

    Returns:
        `(logits [batch, length, vocab] float32, hidden [batch, length,
        hidden_dim] float32, cache)`.
    """
    backbone = model.backbone
    x = backbone.token_embedding(token_ids)
    positions = backbone.position_embedding(x, start_index=index)
    x = backbone.embeddings_add((x, positions))
    updated = []
    for layer, layer_cache in zip(
        backbone.transformer_layers, cache, strict=True
    ):
        x, layer_cache = layer(
            x,
            self_attention_cache=layer_cache,
            self_attention_cache_update_index=index,
        )
        updated.append(layer_cache)
    hidden = backbone.layer_norm(x)
    return (
        tf.cast(_logits(backbone.token_embedding, hidden, matvec), tf.float32),
        tf.cast(hidden, tf.float32),
        tuple(updated),
    )


def _logits(embedding, hidden: tf.Tensor, matvec: bool) -> tf.Tensor:
    """The language-model head, `[batch, length, vocab]`.

    With tied weights it multiplies by the embedding table itself:
    materialising the table's transpose (as `reverse=True` does) costs a
    copy of the table per step under XLA on CPU. With `matvec`, a single
    row (batch 1, one token: every step of batch-1 decoding) takes a plain
    matrix-vector product, which TensorFlow's CPU kernels run faster than
    a batched one.
    """
    if not embedding.tie_weights:
        return embedding(hidden, reverse=True)
    table = tf.cast(embedding.embeddings, hidden.dtype)
    if not matvec:
        return tf.matmul(hidden, table, transpose_b=True)
    shape = tf.shape(hidden)

    def one_row():
        # [b, l, hidden] -> [b * l, hidden] -> [vocab, b * l] -> [b, l, vocab]
        flat = tf.reshape(hidden, [-1, hidden.shape[-1]])
        columns = tf.matmul(table, flat, transpose_b=True)
        return tf.reshape(
            tf.transpose(columns), [shape[0], shape[1], table.shape[0]]
        )

    def rows():
        return tf.matmul(hidden, table, transpose_b=True)

    return tf.cond(tf.equal(shape[0] * shape[1], 1), one_row, rows)


def prefill(model, prompt_ids: tf.Tensor, total_length, matvec: bool = True):
    """Runs the prompts through the model, filling a new cache.

    Args:
        model: the causal LM.
        prompt_ids: int32 `[batch, width]`, right-padded.
        total_length: positions of the cache (>= width).
        matvec: see `forward`.

    Returns:
        `(logits [batch, width, vocab], hidden [batch, width, hidden_dim],
        cache)`, float32.
    """
    cache = empty_cache(model, tf.shape(prompt_ids)[0], total_length)
    return forward(model, prompt_ids, cache, 0, matvec)


def decode_step(
    model, token_ids: tf.Tensor, cache: tuple, index, matvec: bool = True
):
    """One cached step: the tokens at position `index` for every row.

    Args:
        model: the causal LM.
        token_ids: int32 `[rows]`.
        cache: the caches of those rows.
        index: int32 scalar, the position of `token_ids`.
        matvec: see `forward`.

    Returns:
        `(logits [rows, vocab], hidden [rows, hidden_dim], cache)`, float32.
    """
    logits, hidden, cache = forward(
        model, token_ids[:, tf.newaxis], cache, index, matvec
    )
    # [rows, 1, ...] -> [rows, ...]
    return logits[:, 0], hidden[:, 0], cache


def gather_rows(cache: tuple, rows: tf.Tensor) -> tuple:
    """The caches of `rows` (e.g. the parents of the surviving beams)."""
    return tuple(tf.gather(layer_cache, rows) for layer_cache in cache)


def repeat_rows(cache: tuple, times) -> tuple:
    """Each row's caches `times` times in a row: [b, ...] -> [b * times]."""
    return tuple(tf.repeat(layer_cache, times, axis=0) for layer_cache in cache)


def set_column(buffer: tf.Tensor, index, values: tf.Tensor) -> tf.Tensor:
    """`buffer[..., index] = values` for a `[..., length]` buffer."""
    length = tf.shape(buffer)[-1]
    at = tf.equal(tf.range(length), index)
    return tf.where(at, values[..., tf.newaxis], buffer)


def token_log_probs(logits: tf.Tensor, token_ids: tf.Tensor) -> tf.Tensor:
    """Model log-probability of `token_ids` [rows] under `logits`."""
    log_probs = tf.nn.log_softmax(logits)
    return tf.gather(log_probs, token_ids, batch_dims=1)


def is_stop(token_ids: tf.Tensor, stop_token_id) -> tf.Tensor:
    """Whether each token is the stop token (a negative id never stops)."""
    return tf.equal(token_ids, stop_token_id) & (stop_token_id >= 0)
