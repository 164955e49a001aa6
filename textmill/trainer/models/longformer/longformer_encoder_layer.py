"""One Longformer transformer layer (post-layer-norm, as RoBERTa)."""

import keras

from textmill.trainer.models.longformer.longformer_self_attention import (
    LongformerSelfAttention,
    clone_initializer,
)


@keras.saving.register_keras_serializable(package="textmill")
class LongformerEncoderLayer(keras.layers.Layer):
    """Longformer attention, then a GELU feed-forward block.

    `x = LN(x + Dropout(Attention(x)))`, then
    `x = LN(x + Dropout(Dense(GELU(Dense(x)))))`, GELU exact (erf).

    Args:
        num_heads: int. Number of attention heads.
        intermediate_dim: int. Width of the feed-forward block.
        attention_window: int. Even two-sided window of the local attention.
        max_global_tokens: `None` (global slots sized from each batch) or
            an int static bound on global tokens per sequence, see
            `LongformerSelfAttention`. Defaults to `None`.
        dropout: float. Dropout rate on attention probabilities and on the
            two residual branches.
        layer_norm_epsilon: float. Layer norm epsilon. Defaults to `1e-5`.
        kernel_initializer: initializer for all kernels.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        hidden_states: float tensor `(batch, length, hidden)`.
        attention_mask: int tensor `(batch, length)`: `0` padding, `1` local,
            `2` global attention.
        training: bool, whether dropout is active.

    Example:
    ```python
    layer = LongformerEncoderLayer(
        num_heads=2, intermediate_dim=32, attention_window=8
    )
    output = layer(np.random.rand(1, 10, 16), np.ones((1, 10), "int32"))
    ```
    """

    def __init__(
        self,
        num_heads: int,
        intermediate_dim: int,
        attention_window: int,
        max_global_tokens: int | None = None,
        dropout: float = 0.0,
        layer_norm_epsilon: float = 1e-5,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.attention_window = attention_window
        self.max_global_tokens = max_global_tokens
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, hidden_states_shape, attention_mask_shape=None):
        hidden_dim = hidden_states_shape[-1]
        intermediate_shape = (*hidden_states_shape[:-1], self.intermediate_dim)
        self.self_attention = LongformerSelfAttention(
            num_heads=self.num_heads,
            attention_window=self.attention_window,
            max_global_tokens=self.max_global_tokens,
            dropout=self.dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="self_attention",
        )
        self.self_attention.build(hidden_states_shape, attention_mask_shape)
        self.attention_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="attention_dropout"
        )
        self.attention_layer_norm = self._layer_norm("attention_layer_norm")
        self.attention_layer_norm.build(hidden_states_shape)
        self.intermediate_dense = self._dense(
            self.intermediate_dim, "intermediate_dense", activation="gelu"
        )
        self.intermediate_dense.build(hidden_states_shape)
        self.output_dense = self._dense(hidden_dim, "output_dense")
        self.output_dense.build(intermediate_shape)
        self.output_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="output_dropout"
        )
        self.output_layer_norm = self._layer_norm("output_layer_norm")
        self.output_layer_norm.build(hidden_states_shape)
        self.built = True

    def _dense(self, units, name, activation=None):
        return keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def _layer_norm(self, name):
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def call(self, hidden_states, attention_mask, training=None):
        attended = self.self_attention(
            hidden_states, attention_mask, training=training
        )
        attended = self.attention_dropout(attended, training=training)
        x = self.attention_layer_norm(hidden_states + attended)
        y = self.output_dense(self.intermediate_dense(x))
        y = self.output_dropout(y, training=training)
        return self.output_layer_norm(x + y)

    def compute_output_shape(
        self, hidden_states_shape, attention_mask_shape=None
    ):
        return hidden_states_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "attention_window": self.attention_window,
                "max_global_tokens": self.max_global_tokens,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
