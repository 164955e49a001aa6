"""TensorFlow pieces shared by the decoding loops.

A decoding loop works on right-padded prompts: row `r` holds its prompt in
positions `[0, prompt_lengths[r])` of a `[batch, total_length]` buffer, so
each token sits at its position in the prompt alone. The prefill runs
every prompt whole. Then each step fills, with TensorFlow's own kernels,
each row's own next position (greedy decoding and sampling: every row
chooses from its first step, so a batch of unequal prompts takes
`max_new_tokens` steps); or else one position `t` for all rows, where
rows whose prompt is longer than `t` copy their prompt token ("forced")
and the others choose a new token (beam and contrastive search, XLA
loops, TFLite). Causal attention never looks past a row's position, so
the padding a shorter row has there is never seen before it is
overwritten.

The key-value cache holds, per transformer layer, a keys and a values
tensor of `[batch, num_heads, total_length, head_dim]`, written at the
step's position(s).

Why this forks keras-hub's cached call. keras-hub (0.25) decodes with
`GPT2CausalLM.call_with_cache` inside `CausalLM.generate_step`, driven by a
`keras_hub.samplers.Sampler`. Read against what the exported signatures
must do, that path does not fit:

- Request knobs are Python constants there. A sampler's `k`, `p`,
  `temperature`, `num_beams` and contrastive `alpha` are attributes fixed
  by `compile(sampler=...)`, and the number of steps is the width of the
  padded buffer (`max_length`), so a SavedModel signature would hold one
  traced graph per setting. Here they are tensors: one `generate_sample`
  signature takes `temperature`, `top_k`, `top_p`, `seed` and
  `max_new_tokens` with every request.
- Seeds. keras-hub samples from a `SeedGenerator`, a state variable that
  advances with each call; a request here carries its own `seed`, so the
  same request gives the same text on any server replica.
- Outputs. `generate_step` returns token ids only; the signatures also
  return each new token's log-probability (`token_scores`), which only
  the loop that picks the token sees.
- Lengths per row. keras-hub runs every row to the end of the buffer
  unless all rows have stopped; here each row stops at its own
  `prompt length + max_new_tokens` (or its stop token), and the loop ends
  when every row has. keras-hub also starts every row after the shortest
  prompt, a longer row copying its prompt one step per token; here greedy
  decoding and sampling start each row after its own prompt.
- Work per step. `_build_cache` seeds the cache by running the model over
  the whole padded buffer, not only the prompts; the cache is one tensor
  `[batch, layers, 2, length, heads, head_dim]` that each step slices per
  layer and re-stacks (`ops.stack`, per layer and across layers: a copy of
  the whole cache per step); keys and values are stored `[length, heads,
  head_dim]`, not in the `[heads, length, head_dim]` layout the attention
  products read; and the head multiplies by the embedding table's
  transpose (`reverse=True`); each dense layer is an einsum or a
  broadcast batch product, and queries, keys and values three of them.
  Here the prefill runs over the prompts' width only, each layer keeps
  its own keys and values in the layout the attention products read, a
  step writes them in place at one position, every projection is one 2-D
  product with queries, keys and values side by side (`layer_weights`),
  and the tied head reads the table as it is (`_logits`).
- One graph for TFLite. The same `forward` builds the bare network's
  `generate_ids` (`token_id_generation`, `tf_kernels=False`), whose caches are
  one tensor per layer and kind.

The cost is coupling: `forward` reads private attributes of keras-hub's
`TransformerDecoder` and `CachedMultiHeadAttention` (`_self_attention_layer`,
`_query_dense`, `_feedforward_intermediate_dense`, ...), so it holds for the
pinned keras-hub (requirements/constraints.txt). `check_cached_model`
refuses a model of another structure with a clear error, and
tests/serving/sampling/test_generation.py checks cached decoding against
uncached calls of the model itself (the backbone's own forward pass), so a
keras-hub upgrade that changes those layers fails there. On the same
weights, bench/generate/results.md sets keras-hub's `generate` (XLA)
beside these loops: its `keras_hub_generate` row.
"""

from __future__ import annotations

import abc
from typing import NamedTuple

import keras
import tensorflow as tf

# Fills positions after a sequence's end (never read as text).
PAD_ID = 0


class CachedDecoder(abc.ABC):
    """A model's own cached forward pass, which the decoding loops call:
    `CausalLMSteps` for a GPT-2 family causal LM, or e.g. an
    encoder-decoder bound to its encoder's output
    (`seq2seq_generator.EncoderDecoderSteps`)."""

    # Whether `decode_step` takes one position per row (`[rows]`), so that
    # each row of a batch decodes right after its own prompt.
    per_row_positions = False

    @abc.abstractmethod
    def prefill(self, prompt_ids, total_length, logits_at) -> tuple:
        """Runs the prompts through the model, filling a new cache.

        Args:
            prompt_ids: int32 `[batch, width]`, right-padded.
            total_length: positions of the cache (>= width).
            logits_at: int32 scalar, the position whose logits are
                returned (the head runs there only), or `[batch]`, one
                per row.

        Returns:
            `(logits [batch, vocab] at `logits_at`, hidden [batch, width,
            hidden_dim], cache)`, float32.
        """

    @abc.abstractmethod
    def decode_step(self, token_ids, cache, index) -> tuple:
        """One cached step: the tokens at position `index` for every row.

        Args:
            token_ids: int32 `[rows]`.
            cache: the caches of those rows.
            index: int32 scalar, the position of `token_ids`, or `[rows]`,
                each row's own (with `per_row_positions`).

        Returns:
            `(logits [rows, vocab], hidden [rows, hidden_dim], cache)`,
            float32.
        """


def check_cached_model(model) -> None:
    """Raises ValueError unless `model` has a GPT-2 style backbone.

    Args:
        model: a keras-hub causal LM.

    Raises:
        ValueError: the backbone is not GPT-2's: token and position
            embeddings, pre-norm decoder layers without cross-attention,
            a final layer norm; or its layers are quantized (Keras
            `quantize`), whose kernels `layer_weights` cannot read.
    """
    backbone = getattr(model, "backbone", None)
    needed = (
        "token_embedding",
        "position_embedding",
        "transformer_layers",
        "layer_norm",
        "num_heads",
        "hidden_dim",
    )
    layers = getattr(backbone, "transformer_layers", [])
    if not all(hasattr(backbone, name) for name in needed) or not all(
        getattr(layer, "normalize_first", False)
        and hasattr(layer, "_self_attention_layer")
        and getattr(layer, "_cross_attention_layer", None) is None
        for layer in layers
    ):
        raise ValueError(
            f"model {type(model).__name__} cannot decode with a cache: pass a "
            "keras-hub GPT-2 family causal LM (GPT2CausalLM), whose backbone "
            f"has {', '.join(needed)} and pre-norm decoder layers."
        )
    quantized = [
        sub.path
        for layer in layers
        for sub in layer._flatten_layers()
        if getattr(sub.dtype_policy, "quantization_mode", None)
    ]
    if quantized:
        named = ", ".join(quantized[:3]) + (
            ", ..." if len(quantized) > 3 else ""
        )
        raise ValueError(
            f"model {type(model).__name__} has quantized layers ({named}): "
            "decode the float model; for int8 weights, export it to TFLite "
            "(dynamic-range int8)."
        )


def empty_cache(model, batch_size, total_length) -> tuple:
    """Zero key and value caches for `total_length` positions.

    One `(keys, values)` pair per transformer layer, each `[batch,
    num_heads, total_length, head_dim]`: the layout the attention products
    read without transposing, small enough per tensor for TFLite.
    """
    backbone = model.backbone
    shape = [
        batch_size,
        backbone.num_heads,
        total_length,
        backbone.hidden_dim // backbone.num_heads,
    ]
    return tuple(
        (
            tf.zeros(shape, model.compute_dtype),
            tf.zeros(shape, model.compute_dtype),
        )
        for _ in backbone.transformer_layers
    )


class LayerWeights(NamedTuple):
    """One decoder layer's projections as 2-D `[inputs, outputs]` kernels
    and `[outputs]` biases (None: the layer has none)."""

    # Queries, keys and values side by side: [hidden, 3 * hidden].
    qkv_kernel: tf.Tensor
    qkv_bias: tf.Tensor | None
    output_kernel: tf.Tensor
    output_bias: tf.Tensor | None
    inner_kernel: tf.Tensor
    inner_bias: tf.Tensor | None
    outer_kernel: tf.Tensor
    outer_bias: tf.Tensor | None


def layer_weights(model) -> tuple[LayerWeights, ...]:
    """Every decoder layer's `LayerWeights`, read from its Keras layers.

    Called once per decoding call, before its loop: the query, key and
    value kernels are concatenated there (a copy of them per call), so
    each step runs one product for the three, and every product is a 2-D
    `MatMul`. Keras' own calls run three `[batch, 1, hidden]` einsums
    and a broadcast batch product per dense layer, which TensorFlow's CPU
    kernels run 1.3x (8 rows) to 2.4x (32 rows) slower than a `MatMul` of
    the same work.
    """
    backbone = model.backbone
    hidden = backbone.hidden_dim
    dtype = model.compute_dtype

    def kernel(dense, shape):
        return tf.reshape(tf.cast(dense.kernel, dtype), shape)

    def bias(dense):
        if dense.bias is None:
            return None
        return tf.reshape(tf.cast(dense.bias, dtype), [-1])

    weights = []
    for layer in backbone.transformer_layers:
        attention = layer._self_attention_layer
        qkv = (
            attention._query_dense,
            attention._key_dense,
            attention._value_dense,
        )
        biases = [bias(dense) for dense in qkv]
        inner = layer._feedforward_intermediate_dense
        outer = layer._feedforward_output_dense
        weights.append(
            LayerWeights(
                qkv_kernel=tf.concat(
                    [kernel(dense, [hidden, -1]) for dense in qkv], axis=1
                ),
                qkv_bias=(
                    None if biases[0] is None else tf.concat(biases, axis=0)
                ),
                output_kernel=kernel(attention._output_dense, [-1, hidden]),
                output_bias=bias(attention._output_dense),
                inner_kernel=kernel(inner, inner.kernel.shape),
                inner_bias=bias(inner),
                outer_kernel=kernel(outer, outer.kernel.shape),
                outer_bias=bias(outer),
            )
        )
    return tuple(weights)


def forward(
    model,
    token_ids: tf.Tensor,
    cache: tuple,
    index,
    tf_kernels: bool = True,
    logits_at=None,
    weights: tuple[LayerWeights, ...] | None = None,
):
    """The model on `token_ids` at positions `index, index + 1, ...`.

    The same computation as the backbone's own call, on its layers and
    weights, with a key-value cache: each token attends to the cached
    positions up to its own, and its keys and values are written there.
    The causal mask is built once per call for all layers.

    Args:
        model: the causal LM.
        token_ids: int32 `[batch, length]`.
        cache: the per-layer caches (see `empty_cache`).
        index: int32 scalar, the position of the first token; or int32
            `[batch]`, each row's position of its one token (`token_ids`
            `[batch, 1]`; needs `tf_kernels`).
        tf_kernels: True when TensorFlow's own kernels run the call:
            then the language-model head of up to 512 rows multiplies
            the table by the rows (a `tf.cond`), and cache writes are
            in place (see `_write`). False under XLA (which needs the
            write's offsets as compile-time constants in a loop) and for
            TFLite (whose shape propagation through that conditional
            inside the decoding loop fails).
        logits_at: None, or an int32 scalar or `[batch]` (one per row):
            apply the language-model head only at this offset in
            `token_ids` (a prefill needs the logits of one position per
            row; the head is most of a position's cost).
        weights: `layer_weights(model)`, read once per decoding call;
            None reads them here.

    Returns:
        `(logits [batch, length, vocab] float32, hidden [batch, length,
        hidden_dim] float32, cache)`; with `logits_at`, logits are `[batch,
        1, vocab]`.
    """
    backbone = model.backbone
    if weights is None:
        weights = layer_weights(model)
    index = tf.convert_to_tensor(index, tf.int32)
    per_row = index.shape.rank == 1
    if per_row and not tf_kernels:
        raise ValueError(
            "a position per row needs tf_kernels=True (its cache write is "
            "in place, which XLA loops and TFLite are not given here)."
        )
    x = backbone.token_embedding(token_ids)
    length = tf.shape(token_ids)[1]
    total_length = tf.shape(cache[0][0])[2]
    if per_row:
        # One token per row at its own position: [batch, 1, hidden].
        x = x + backbone.position_embedding(x, positions=index[:, None])
        # [batch, 1, 1, total_length], broadcast over heads.
        visible = tf.range(total_length)[None, :] <= index[:, None]
        visible = visible[:, None, None, :]
    else:
        x = x + backbone.position_embedding(x, start_index=index)
        # [length, total_length].
        visible = tf.range(total_length)[None, :] <= (
            index + tf.range(length)[:, None]
        )
    # 0 where a query may attend, else -1e9.
    mask = tf.where(visible, 0.0, -1e9)
    updated = []
    for layer, layer_weight, (keys, values) in zip(
        backbone.transformer_layers, weights, cache, strict=True
    ):
        x, keys, values = _decoder_layer(
            layer, layer_weight, x, keys, values, index, mask, tf_kernels
        )
        updated.append((keys, values))
    hidden = backbone.layer_norm(x)
    at = hidden
    if logits_at is not None:
        logits_at = tf.convert_to_tensor(logits_at, tf.int32)
        if logits_at.shape.rank == 0:
            at = tf.gather(hidden, [logits_at], axis=1)  # [batch, 1, hidden]
        else:
            at = tf.gather(hidden, logits_at[:, None], batch_dims=1)
    return (
        tf.cast(_logits(backbone.token_embedding, at, tf_kernels), tf.float32),
        tf.cast(hidden, tf.float32),
        tuple(updated),
    )


def _decoder_layer(layer, weights, x, keys, values, index, mask, tf_kernels):
    """One pre-norm decoder layer (keras-hub `TransformerDecoder` with
    `normalize_first=True`, inference) with cached keys and values, its
    projections on `weights` (`LayerWeights`)."""
    batch, length = tf.shape(x)[0], tf.shape(x)[1]
    heads = layer._self_attention_layer._num_heads
    h = layer._self_attention_layer_norm(x)

    def split_heads(part):
        # [batch, length, hidden] -> [batch, heads, length, head_dim]
        part = tf.reshape(part, [batch, length, heads, -1])
        return tf.transpose(part, [0, 2, 1, 3])

    qkv = _dense(h, weights.qkv_kernel, weights.qkv_bias)
    query, key, value = (split_heads(part) for part in tf.split(qkv, 3, -1))
    keys = _write(keys, key, index, tf_kernels)
    values = _write(values, value, index, tf_kernels)
    head_dim = tf.cast(tf.shape(query)[-1], query.dtype)
    scores = tf.matmul(query, keys, transpose_b=True) / tf.sqrt(head_dim)
    # Softmax in float32 whatever the compute dtype.
    attention = tf.nn.softmax(tf.cast(scores, tf.float32) + mask)
    context = tf.matmul(tf.cast(attention, values.dtype), values)
    # [batch, heads, length, head_dim] -> [batch, length, hidden]
    context = tf.reshape(
        tf.transpose(context, [0, 2, 1, 3]), [batch, length, -1]
    )
    x = x + _dense(context, weights.output_kernel, weights.output_bias)
    h = layer._feedforward_layer_norm(x)
    h = layer._feedforward_intermediate_dense.activation(
        _dense(h, weights.inner_kernel, weights.inner_bias)
    )
    return x + _dense(h, weights.outer_kernel, weights.outer_bias), keys, values


def _dense(x: tf.Tensor, kernel: tf.Tensor, bias) -> tf.Tensor:
    """`x @ kernel + bias` for `x` of `[batch, length, inputs]`, as one
    2-D `MatMul` over the batch's rows."""
    shape = tf.shape(x)
    y = tf.matmul(tf.reshape(x, [-1, kernel.shape[0]]), kernel)
    if bias is not None:
        y = tf.nn.bias_add(y, bias)
    return tf.reshape(y, [shape[0], shape[1], kernel.shape[1]])


def _write(cache: tf.Tensor, update: tf.Tensor, index, tf_kernels: bool):
    """`cache[:, :, index:index + length] = update`.

    With `tf_kernels`, a `TensorStridedSliceUpdate`: TensorFlow's CPU
    kernel writes into the loop's cache buffer in place when nothing else
    holds it, where the XLA dynamic-update-slice that `slice_update`
    lowers to (run outside XLA) copies the whole cache at every write: at
    batch 8 (12 writes per step, 96 positions) it measured 1.0 against
    3.2 ms of CPU time per step. Without `tf_kernels`, the
    dynamic-update-slice: XLA and TFLite compile it in a loop.

    With `index` of `[batch]` (one position per row, `update` of length
    1), an `InplaceUpdate` of the rows `(row, head, index[row])` of the
    cache seen as `[batch * heads * total_length, head_dim]`. That kernel
    writes into its input buffer whoever else holds it (a
    `TensorScatterUpdate` there copied the whole cache at every write:
    0.29 against 0.05 ms per write at batch 8, 96 positions). It is safe
    here: a decoding step's cache comes from the prefill's writes or the
    step before, and nothing reads the cache as it was before the write
    (the step's attention reads the written one).
    """
    if index.shape.rank == 1:
        shape = tf.shape(cache)
        heads, total = shape[1], shape[2]
        # [batch, heads] rows of the flattened cache.
        rows = (
            tf.range(shape[0])[:, None] * heads + tf.range(heads)[None, :]
        ) * total + index[:, None]
        flat = tf.raw_ops.InplaceUpdate(
            x=tf.reshape(cache, [-1, shape[3]]),
            i=tf.reshape(rows, [-1]),
            v=tf.reshape(update, [-1, shape[3]]),
        )
        return tf.reshape(flat, shape)
    if not tf_kernels:
        return keras.ops.slice_update(cache, [0, 0, index, 0], update)
    end = index + tf.shape(update)[2]
    # Masks 0b1011: axes 0, 1 and 3 whole; axis 2 from `index` to `end`.
    return tf.raw_ops.TensorStridedSliceUpdate(
        input=cache,
        begin=tf.stack([0, 0, index, 0]),
        end=tf.stack([0, 0, end, 0]),
        strides=[1, 1, 1, 1],
        value=update,
        begin_mask=0b1011,
        end_mask=0b1011,
    )


# Up to this many rows, the head multiplies the table by the rows'
# transpose (measured on 2 cores: 2.2x faster than `hidden @ table^T` at
# 8 rows, 1.8x at 32, 1.3x at 512; slower from about 2,048 rows on, where
# the product is bound by arithmetic, not by reading the table).
_COLUMN_PRODUCT_MAX_ROWS = 512


def _logits(embedding, hidden: tf.Tensor, tf_kernels: bool) -> tf.Tensor:
    """The language-model head, `[batch, length, vocab]`.

    With tied weights it multiplies by the embedding table itself:
    materialising the table's transpose (as `reverse=True` does) costs a
    copy of the table per step under XLA on CPU, and so does a 3-D
    product, which XLA broadcasts the table for (greedy decoding at batch
    1 on 2 cores: 16.5 tok/s, against 50.4 with the 2-D product here).
    With `tf_kernels`, a few rows (every decoding step, and a prefill's
    one position per row) take `table @ rows^T`, which TensorFlow's CPU
    kernels run as one pass over the table in its stored order, then
    transpose the small `[vocab, rows]` result; `rows @ table^T` reads
    the table across its layout.
    """
    if not embedding.tie_weights:
        return embedding(hidden, reverse=True)
    table = tf.cast(embedding.embeddings, hidden.dtype)
    shape = tf.shape(hidden)
    # [b, l, hidden] -> [b * l, hidden]
    flat = tf.reshape(hidden, [-1, hidden.shape[-1]])

    def unflatten(product):  # [b * l, vocab] -> [b, l, vocab]
        return tf.reshape(product, [shape[0], shape[1], table.shape[0]])

    def rows():
        return unflatten(tf.matmul(flat, table, transpose_b=True))

    if not tf_kernels:
        return rows()

    def columns():
        # [vocab, b * l] -> [b * l, vocab]
        return unflatten(tf.transpose(tf.matmul(table, flat, transpose_b=True)))

    return tf.cond(
        shape[0] * shape[1] <= _COLUMN_PRODUCT_MAX_ROWS, columns, rows
    )


class CausalLMSteps(CachedDecoder):
    """The cached steps of a GPT-2 family causal LM (see `forward`).

    Built inside a decoding call, before its loop: its `layer_weights` are
    read there once for every step.

    Args:
        model: a keras-hub GPT-2 family causal LM.
        tf_kernels: see `forward`; with it, `decode_step` takes one
            position per row.
    """

    def __init__(self, model, tf_kernels: bool = True):
        self.model = model
        self.tf_kernels = tf_kernels
        self.weights = layer_weights(model)

    @property
    def per_row_positions(self) -> bool:
        return self.tf_kernels

    def prefill(self, prompt_ids, total_length, logits_at) -> tuple:
        cache = empty_cache(self.model, tf.shape(prompt_ids)[0], total_length)
        logits, hidden, cache = forward(
            self.model,
            prompt_ids,
            cache,
            0,
            self.tf_kernels,
            logits_at,
            self.weights,
        )
        return logits[:, 0], hidden, cache

    def decode_step(self, token_ids, cache, index) -> tuple:
        logits, hidden, cache = forward(
            self.model,
            token_ids[:, tf.newaxis],
            cache,
            index,
            self.tf_kernels,
            weights=self.weights,
        )
        # [rows, 1, ...] -> [rows, ...]
        return logits[:, 0], hidden[:, 0], cache


def cached_steps(model, tf_kernels: bool = True) -> CachedDecoder:
    """`model` itself when it is a `CachedDecoder`, else its
    `CausalLMSteps`: what a decoding loop calls."""
    if isinstance(model, CachedDecoder):
        return model
    return CausalLMSteps(model, tf_kernels)


def gather_rows(cache: tuple, rows: tf.Tensor) -> tuple:
    """The caches of `rows` (e.g. the parents of the surviving beams)."""
    return tf.nest.map_structure(lambda x: tf.gather(x, rows), cache)


def repeat_rows(cache: tuple, times) -> tuple:
    """Each row's caches `times` times in a row: [b, ...] -> [b * times]."""
    return tf.nest.map_structure(lambda x: tf.repeat(x, times, axis=0), cache)


def set_column(buffer: tf.Tensor, index, values: tf.Tensor) -> tf.Tensor:
    """`buffer[..., index] = values` for a `[..., length]` buffer; `index`
    is a scalar, or one per row of a `[batch, length]` buffer."""
    length = tf.shape(buffer)[-1]
    at = tf.equal(tf.range(length), tf.expand_dims(index, -1))
    return tf.where(at, values[..., tf.newaxis], buffer)


def token_log_probs(logits: tf.Tensor, token_ids: tf.Tensor) -> tf.Tensor:
    """Model log-probability of `token_ids` [rows] under `logits`."""
    log_probs = tf.nn.log_softmax(logits)
    return tf.gather(log_probs, token_ids, batch_dims=1)


def is_stop(token_ids: tf.Tensor, stop_token_id) -> tf.Tensor:
    """Whether each token is the stop token (a negative id never stops)."""
    return tf.equal(token_ids, stop_token_id) & (stop_token_id >= 0)
