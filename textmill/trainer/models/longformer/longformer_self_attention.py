"""Longformer self-attention: a sliding window plus symmetric global tokens."""

import math

import keras
from keras import ops

# Added to the float32 scores of keys a query must not see. Finite, so a row
# whose keys are all masked gives a uniform (later discarded) distribution
# instead of NaNs that would leak into gradients.
_MASK_VALUE = -1e9


def clone_initializer(
    initializer: keras.initializers.Initializer,
) -> keras.initializers.Initializer:
    """Returns a fresh copy of `initializer`, so layers do not share one.

    Args:
        initializer: a `keras.initializers.Initializer` instance.

    Returns:
        A new initializer of the same class and config.
    """
    return initializer.__class__.from_config(initializer.get_config())


def _take_positions(x, positions):
    """Gathers `x[b, positions[b, k]]` for every batch row `b`.

    Args:
        x: tensor of shape `(batch, length, ...)`.
        positions: int tensor of shape `(batch, k)`, values in `[0, length)`.

    Returns:
        Tensor of shape `(batch, k, ...)`.
    """
    batch_size, length = ops.shape(x)[0], ops.shape(x)[1]
    # (batch, length, ...) -> (batch * length, ...)
    flat = ops.reshape(x, (-1,) + tuple(x.shape[2:]))
    offsets = ops.arange(batch_size, dtype="int32") * length
    flat_positions = ops.cast(positions, "int32") + offsets[:, None]
    return ops.take(flat, flat_positions, axis=0)


def _with_neighbours(blocks, axis):
    """Concatenates each block with its previous and next block.

    Args:
        blocks: tensor with a block axis `axis` and the positions of a block
            on `axis + 1`.
        axis: int, the block axis.

    Returns:
        `blocks` with `axis + 1` three times longer: blocks `c - 1`, `c`,
        `c + 1` for block `c`. The first block's previous and the last
        block's next block wrap around; callers mask them. (Rolls, unlike
        strided slices, have cheap gradients.)
    """
    return ops.concatenate(
        [
            ops.roll(blocks, 1, axis=axis),
            blocks,
            ops.roll(blocks, -1, axis=axis),
        ],
        axis=axis + 1,
    )


@keras.saving.register_keras_serializable(package="textmill")
class LongformerSelfAttention(keras.layers.Layer):
    """Longformer attention: local sliding window plus global tokens.

    Every token attends to the `attention_window // 2` tokens on each side of
    it and to every global token; every global token attends to the whole
    sequence through its own query/key/value projections
    (Beltagy et al., 2020). The semantics match Hugging Face's
    `LongformerSelfAttention`: local scores use the local projections, global
    tokens are keys for everybody through the *local* key/value projections
    (once, not again inside the window), global tokens' outputs come from the
    global projections, padding keys are masked everywhere and padding
    queries output zeros (before the output projection).

    Blocked computation, O(n * (w + g)) memory, never an n x n matrix: the
    projected sequence is padded to a multiple of `h = attention_window // 2`
    and cut into blocks of `h` queries. The keys within `h` of any query of
    block `c` lie in blocks `c - 1`, `c`, `c + 1`, so each query block meets
    `3h` keys: the key blocks concatenated with two rolled copies of
    themselves (the wrapped-around ends are masked), a static band mask
    dropping the keys farther than `h`, plus the `g` (see below)
    global keys appended to every block. One batched matmul gives scores of
    shape `(batch, heads, n / h, h, 3h + g)`, a single float32 softmax
    normalises local and global keys together, and one batched matmul with
    the values gives the context. Compared with the chunked "diagonal"
    formulation (chunks of `2h` overlapping by `h`, whose `2h x 2h` scores
    are then skewed into `2h + 1` diagonals and back), this computes 3hn
    instead of 4hn query-key products, makes no skewed or diagonalised
    copies, and needs no strided slices (whose gradients are slow on CPU);
    with a static bound on global tokens, every shape is static for a static
    input length (XLA, TPUs, JAX).

    Global tokens are found from the mask and occupy `g` slots:

    - `max_global_tokens=None` (the default): `g` is the largest number of
      global tokens of any sequence in the batch, found at each call, so any
      number of tokens may be global, as in Hugging Face, and a batch with
      one global token pays for one slot. `g` is then a data-dependent
      dimension, which XLA cannot compile: the layer sets
      `supports_jit = False` (Keras then runs it without XLA, on every
      backend) and raises a `ValueError` if traced by `jax.jit` directly.
    - `max_global_tokens=k`: `k` static slots, for XLA / TPU training and
      fixed-shape exports. A sequence with more than `k` global tokens is an
      error: the TensorFlow backend raises `InvalidArgumentError` at run
      time (also from a SavedModel), eager backends raise `ValueError`, and
      where no check can run (XLA, TFLite, `jax.jit`) that sequence's output
      is NaN, never a silently different answer. `k = 0` removes global
      attention (and its projections).

    Args:
        num_heads: int. Number of attention heads; must divide the hidden
            size.
        attention_window: int. Even, positive window size `w`: each token
            sees `w // 2` tokens on each side (and itself).
        max_global_tokens: `None` or int. `None` sizes the global slots from
            each batch; an int is a static bound on the number of global
            tokens per sequence (see above). Defaults to `None`.
        dropout: float. Dropout rate on the attention probabilities.
        kernel_initializer: initializer for the projection kernels.
        bias_initializer: initializer for the projection biases.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        hidden_states: float tensor `(batch, length, hidden)`, any length.
        attention_mask: int tensor `(batch, length)`: `0` padding, `1` local
            attention, `2` global attention.
        training: bool, whether dropout is active.

    Example:
    ```python
    layer = LongformerSelfAttention(num_heads=2, attention_window=8)
    hidden = np.random.rand(1, 13, 16).astype("float32")
    mask = np.ones((1, 13), "int32")
    mask[0, 0] = 2  # global attention on the first token
    output = layer(hidden, mask)  # (1, 13, 16)
    ```

    Reference:
        - [Beltagy et al., 2020](https://arxiv.org/abs/2004.05150)
    """

    def __init__(
        self,
        num_heads: int,
        attention_window: int,
        max_global_tokens: int | None = None,
        dropout: float = 0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            not isinstance(attention_window, int)
            or attention_window <= 0
            or attention_window % 2
        ):
            raise ValueError(
                "`attention_window` must be an even positive int (the "
                "two-sided window size). Received: "
                f"attention_window={attention_window!r}; pass e.g. 512."
            )
        if max_global_tokens is not None and (
            not isinstance(max_global_tokens, int) or max_global_tokens < 0
        ):
            raise ValueError(
                "`max_global_tokens` must be None (global slots sized from "
                "each batch) or an int >= 0 (a static bound). Received: "
                f"max_global_tokens={max_global_tokens!r}."
            )
        self.num_heads = num_heads
        self.attention_window = attention_window
        self.max_global_tokens = max_global_tokens
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        # Slots sized from the data are a dynamic dimension XLA cannot take.
        self.supports_jit = max_global_tokens is not None

    @property
    def _has_global(self) -> bool:
        return self.max_global_tokens != 0

    def _projection(self, name, hidden_dim):
        return keras.layers.Dense(
            hidden_dim,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, hidden_states_shape, attention_mask_shape=None):
        hidden_dim = hidden_states_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"The hidden size ({hidden_dim}) must be divisible by "
                f"`num_heads` ({self.num_heads}); change one of them."
            )
        self._head_dim = hidden_dim // self.num_heads
        names = ["query_dense", "key_dense", "value_dense"]
        if self._has_global:
            names += ["global_query_dense", "global_key_dense"]
            names += ["global_value_dense"]
        for name in names + ["output_dense"]:
            projection = self._projection(name, hidden_dim)
            projection.build(hidden_states_shape)
            setattr(self, name, projection)
        self._dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy
        )
        self.built = True

    def _split_heads(self, x):
        # (batch, length, hidden) -> (batch, heads, length, head_dim)
        x = ops.reshape(
            x, (ops.shape(x)[0], -1, self.num_heads, self._head_dim)
        )
        return ops.transpose(x, (0, 2, 1, 3))

    def _merge_heads(self, x):
        # (batch, heads, length, head_dim) -> (batch, length, hidden)
        x = ops.transpose(x, (0, 2, 1, 3))
        return ops.reshape(
            x, (ops.shape(x)[0], -1, self.num_heads * self._head_dim)
        )

    def _num_slots(self, counts):
        """The number of global slots `g` for a batch.

        Args:
            counts: int `(batch,)`, the global tokens of each sequence.

        Returns:
            The static bound; else the batch's largest count (at least 1,
            so no tensor has an empty axis): a scalar tensor on TensorFlow,
            whose graphs take data-dependent shapes, a Python int elsewhere.

        Raises:
            ValueError: slots sized from the data under `jax.jit`.
        """
        if self.max_global_tokens is not None:
            return self.max_global_tokens
        num_slots = ops.maximum(ops.max(counts), 1)
        if keras.backend.backend() == "tensorflow":
            return num_slots
        try:
            return int(ops.convert_to_numpy(num_slots))
        except Exception as error:  # a traced value, e.g. under jax.jit
            raise ValueError(
                f"{self.name}: `max_global_tokens=None` sizes the global "
                "slots from the data, which a compiled (traced) function "
                "cannot do. Build the model with an int `max_global_tokens` "
                "(a static bound) to compile it, or run it eagerly."
            ) from error

    def _check_bound(self, counts):
        """Raises where it can if a sequence has more global tokens than
        the static bound (see the class docstring for where it cannot).

        Args:
            counts: int `(batch,)`, the global tokens of each sequence.

        Raises:
            ValueError: on an eager backend, a count over the bound.
        """
        message = (
            f"{self.name}: a sequence has more tokens marked global (2 in "
            "the padding mask) than `max_global_tokens="
            f"{self.max_global_tokens}`, the static bound this model was "
            "built with. Mark fewer tokens global, or build the model with "
            "`max_global_tokens=None` (slots sized from each batch) or a "
            "larger bound."
        )
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.debugging.assert_less_equal(
                counts,
                self.max_global_tokens,
                message=message + " Global tokens per sequence:",
                summarize=16,
            )
            return
        try:
            counts = ops.convert_to_numpy(counts)
        except Exception:  # traced (jax.jit): the NaN output is the signal
            return
        if counts.max(initial=0) > self.max_global_tokens:
            raise ValueError(f"{message} Received counts: {counts.tolist()}.")

    def _global_layout(self, mask):
        """Locates the global tokens.

        Returns:
            `is_global` `(batch, length)` bool, the tokens given global
            attention; `positions` `(batch, g)` their positions in order
            (0 for empty slots); `slot_valid` `(batch, g)` bool;
            `slot_of_token` `(batch, length)`, each global token's slot;
            `counts` `(batch,)`, the tokens marked global per sequence.
        """
        marked = ops.equal(mask, 2)
        # 1-based running count of marked tokens, (batch, length).
        rank = ops.cumsum(ops.cast(marked, "int32"), axis=1)
        counts = rank[:, -1]
        num_slots = self._num_slots(counts)
        is_global = ops.logical_and(marked, rank <= num_slots)
        slots = ops.arange(1, num_slots + 1, dtype="int32")
        # hits[b, s, i]: token i is global and holds slot s, (batch, g, length).
        hits = ops.logical_and(
            is_global[:, None, :],
            ops.equal(rank[:, None, :], slots[None, :, None]),
        )
        positions = ops.argmax(ops.cast(hits, "int32"), axis=-1)
        slot_valid = ops.any(hits, axis=-1)
        slot_of_token = ops.clip(rank - 1, 0, num_slots - 1)
        return is_global, positions, slot_valid, slot_of_token, counts

    def _softmax(self, scores, bias, training):
        # Scores and mask in float32, probabilities back in the compute dtype.
        scores = ops.cast(scores, "float32") + bias
        probs = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        return self._dropout_layer(probs, training=training)

    def call(self, hidden_states, attention_mask, training=None):
        half = self.attention_window // 2
        batch_size = ops.shape(hidden_states)[0]
        length = ops.shape(hidden_states)[1]
        mask = ops.cast(attention_mask, "int32")
        is_padding = ops.equal(mask, 0)
        if self._has_global:
            is_global, positions, slot_valid, slot_of_token, counts = (
                self._global_layout(mask)
            )
            is_local_key = ops.logical_and(
                ops.logical_not(is_padding), ops.logical_not(is_global)
            )
        else:
            counts = ops.sum(ops.cast(ops.equal(mask, 2), "int32"), axis=1)
            is_local_key = ops.logical_not(is_padding)
        if self.max_global_tokens is not None:
            self._check_bound(counts)

        query = self.query_dense(hidden_states)
        query = query * ops.cast(1.0 / math.sqrt(self._head_dim), query.dtype)
        key = self.key_dense(hidden_states)
        value = self.value_dense(hidden_states)
        # Queries (batch, heads, blocks, half, head_dim); keys and values with
        # their neighbour blocks, (batch, heads, blocks, 3 * half, head_dim).
        queries = self._blocks(query, half)
        keys = _with_neighbours(self._blocks(key, half), axis=2)
        values = _with_neighbours(self._blocks(value, half), axis=2)
        bias = self._local_bias(is_local_key, half)

        if self._has_global:
            # Every block also sees the global tokens (local projections).
            keys = self._append_global(keys, key, positions)
            values = self._append_global(values, value, positions)
            global_bias = ops.where(slot_valid, 0.0, _MASK_VALUE)
            # (batch, g) -> (batch, blocks, half, g)
            global_bias = ops.broadcast_to(
                global_bias[:, None, None, :],
                (*ops.shape(bias)[:3], ops.shape(positions)[1]),
            )
            bias = ops.concatenate([bias, global_bias], axis=-1)

        # (batch, heads, blocks, half, 3 * half + g)
        scores = ops.einsum("bhcqd,bhckd->bhcqk", queries, keys)
        probs = self._softmax(scores, bias[:, None], training)
        context = ops.einsum("bhcqk,bhckd->bhcqd", probs, values)
        # (batch, heads, blocks, half, head_dim) -> (batch, length, hidden)
        context = ops.reshape(
            context, (batch_size, self.num_heads, -1, self._head_dim)
        )
        context = self._unpad(self._merge_heads(context), length)

        if self._has_global:
            global_context = self._global_context(
                hidden_states, positions, is_padding, training
            )
            context = ops.where(
                is_global[:, :, None],
                _take_positions(global_context, slot_of_token),
                context,
            )
        context = ops.where(
            is_padding[:, :, None], ops.zeros_like(context), context
        )
        output = self.output_dense(context)
        if self.max_global_tokens is not None:
            # A sequence over the bound outputs NaN wherever the check above
            # cannot stop the run (XLA, TFLite, jax.jit).
            over = (counts > self.max_global_tokens)[:, None, None]
            output = ops.where(over, float("nan"), output)
        return output

    def _blocks(self, x, half):
        """`(batch, length, hidden)` -> `(batch, heads, blocks, half, d)`.

        The length is padded with zeros to a multiple of `half`.
        """
        padding = (-ops.shape(x)[1]) % half
        if not isinstance(padding, int) or padding:
            x = ops.pad(x, ((0, 0), (0, padding), (0, 0)))
        return ops.reshape(
            self._split_heads(x),
            (ops.shape(x)[0], self.num_heads, -1, half, self._head_dim),
        )

    def _unpad(self, x, length):
        """Drops the block padding: `(batch, padded, hidden)` -> `length`."""
        if isinstance(length, int) and x.shape[1] == length:
            return x
        return ops.slice(x, (0, 0, 0), (ops.shape(x)[0], length, x.shape[2]))

    def _local_bias(self, is_local_key, half):
        """Float32 additive mask `(batch, blocks, half, 3 * half)`.

        0 where the query may see the key: the key is a local non-padding
        token inside the sequence, at most `half` positions away.
        """
        length = ops.shape(is_local_key)[1]
        padding = (-length) % half
        key_ok = ops.cast(is_local_key, "int32")
        if not isinstance(padding, int) or padding:
            key_ok = ops.pad(key_ok, ((0, 0), (0, padding)))
        # (batch, padded) -> (batch, blocks, half) -> (batch, blocks, 3 * half)
        key_ok = _with_neighbours(
            ops.reshape(key_ok, (ops.shape(key_ok)[0], -1, half)), axis=1
        )
        num_blocks = ops.shape(key_ok)[1]
        # Absolute key positions of each block's 3 * half keys.
        position = (
            ops.arange(num_blocks)[:, None] * half
            + ops.arange(3 * half)[None, :]
            - half
        )
        in_sequence = ops.logical_and(
            position >= 0, position < num_blocks * half
        )
        offset = (
            ops.arange(3 * half)[None, :] - half - ops.arange(half)[:, None]
        )
        allowed = ops.logical_and(
            ops.logical_and(key_ok > 0, in_sequence[None])[:, :, None, :],
            (ops.abs(offset) <= half)[None, None],
        )
        return ops.where(allowed, 0.0, _MASK_VALUE)

    def _append_global(self, blocks, projected, positions):
        """Appends the global tokens' vectors to every block's keys/values.

        Args:
            blocks: `(batch, heads, blocks, 3 * half, head_dim)`.
            projected: `(batch, length, hidden)` local keys or values.
            positions: `(batch, g)` positions of the global tokens.

        Returns:
            `(batch, heads, blocks, 3 * half + g, head_dim)`.
        """
        chosen = self._split_heads(_take_positions(projected, positions))
        # (batch, heads, g, head_dim) -> (batch, heads, blocks, g, head_dim)
        chosen = ops.broadcast_to(
            chosen[:, :, None],
            (*ops.shape(blocks)[:3], ops.shape(positions)[1], self._head_dim),
        )
        return ops.concatenate([blocks, chosen], axis=3)

    def _global_context(self, hidden_states, positions, is_padding, training):
        """Global tokens attend to every token, `(batch, g, hidden)`."""
        scale = 1.0 / math.sqrt(self._head_dim)
        query = self.global_query_dense(
            _take_positions(hidden_states, positions)
        )
        query = self._split_heads(query * ops.cast(scale, self.compute_dtype))
        key = self._split_heads(self.global_key_dense(hidden_states))
        value = self._split_heads(self.global_value_dense(hidden_states))
        # (batch, heads, g, length)
        scores = ops.einsum("bhgd,bhnd->bhgn", query, key)
        bias = ops.where(is_padding, _MASK_VALUE, 0.0)[:, None, None, :]
        probs = self._softmax(scores, bias, training)
        return self._merge_heads(ops.einsum("bhgn,bhnd->bhgd", probs, value))

    def compute_output_shape(
        self, hidden_states_shape, attention_mask_shape=None
    ):
        return hidden_states_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "attention_window": self.attention_window,
                "max_global_tokens": self.max_global_tokens,
                "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
