"""Longformer backbone: RoBERTa embeddings, local + global attention layers."""

import keras
from keras import ops
from keras_hub.models import Backbone

from textmill.trainer.models.longformer.longformer_embeddings import (
    LongformerEmbeddings,
)
from textmill.trainer.models.longformer.longformer_encoder_layer import (
    LongformerEncoderLayer,
)


def longformer_kernel_initializer(stddev: float = 0.02):
    """Returns the truncated-normal initializer Longformer/RoBERTa use.

    Args:
        stddev: standard deviation. Defaults to `0.02`.

    Returns:
        A `keras.initializers.TruncatedNormal`.
    """
    return keras.initializers.TruncatedNormal(stddev=stddev)


def with_global_start_token(padding_mask):
    """Marks position 0 (`<s>`) global unless it is padding.

    Args:
        padding_mask: int tensor `(batch, length)` with `0` padding, `1`
            local, `2` global.

    Returns:
        The mask with `padding_mask[:, 0]` set to `2` where it was not `0`.
    """
    padding_mask = ops.cast(padding_mask, "int32")
    first = padding_mask[:, :1]
    first = ops.where(ops.greater(first, 0), 2, first)
    return ops.concatenate([first, padding_mask[:, 1:]], axis=1)


@keras.saving.register_keras_serializable(package="textmill")
class LongformerBackbone(Backbone):
    """Longformer encoder network (Beltagy et al., 2020).

    A RoBERTa encoder whose self-attention is a sliding window of
    `attention_window` tokens plus global attention for the tokens the mask
    marks, so memory and time grow linearly with the sequence length. Takes
    sequences of any length up to `max_sequence_length`; each attention layer
    pads internally to a multiple of half its window and slices back, so the
    output has the input's length.

    Inputs are a dict:
        - `"token_ids"`: int `(batch, length)`.
        - `"padding_mask"`: int `(batch, length)` with `0` = padding,
          `1` = local attention, `2` = global attention (Hugging Face's
          `attention_mask * (global_attention_mask + 1)`). A 0/1 padding mask
          is valid: then no token is global.

    Output: the final hidden states, `(batch, length, hidden_dim)`.

    Args:
        vocabulary_size: int. Size of the token vocabulary.
        num_layers: int. Number of transformer layers.
        num_heads: int. Number of attention heads per layer.
        hidden_dim: int. Hidden size.
        intermediate_dim: int. Width of each feed-forward block.
        attention_window: int or list of ints (one per layer). Even two-sided
            local attention window. Defaults to `512`.
        max_global_tokens: `None` or int. `None` (the default) sizes the
            global attention from each batch, so any number of tokens may be
            global (the model then runs without XLA). An int is a static
            bound per sequence, for XLA / TPU training and fixed-shape
            exports: a sequence with more global tokens raises an error, or
            outputs NaN where no check can run (XLA, TFLite); `0` removes
            global attention. See `LongformerSelfAttention`.
        dropout: float. Dropout rate for embeddings, attention probabilities
            and residual branches. Defaults to `0.1`.
        max_sequence_length: int. Longest supported input (the position table
            has `max_sequence_length + pad_token_id + 1` rows). Defaults to
            `4096`.
        pad_token_id: int. Padding token id, also RoBERTa's position offset.
            Defaults to `1`.
        layer_norm_epsilon: float. Defaults to `1e-5`.
        dtype: `None`, a dtype name or a `keras.DTypePolicy`, e.g.
            `"mixed_bfloat16"`. Softmaxes always run in float32.
        **kwargs: other `keras_hub.models.Backbone` arguments.

    Example:
    ```python
    backbone = LongformerBackbone(
        vocabulary_size=1000, num_layers=2, num_heads=2, hidden_dim=64,
        intermediate_dim=128, attention_window=32, max_sequence_length=512,
    )
    token_ids = np.random.randint(3, 1000, size=(2, 100))
    padding_mask = np.ones((2, 100), "int32")
    padding_mask[:, 0] = 2  # global attention on <s>
    hidden = backbone({"token_ids": token_ids, "padding_mask": padding_mask})
    ```

    Reference:
        - [Beltagy et al., 2020](https://arxiv.org/abs/2004.05150)
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        attention_window: int | list[int] = 512,
        max_global_tokens: int | None = None,
        dropout: float = 0.1,
        max_sequence_length: int = 4096,
        pad_token_id: int = 1,
        layer_norm_epsilon: float = 1e-5,
        dtype=None,
        **kwargs,
    ):
        windows = attention_window
        if isinstance(windows, int):
            windows = [windows] * num_layers
        windows = list(windows)
        if len(windows) != num_layers:
            raise ValueError(
                "`attention_window` must be an int or a list with one window "
                f"per layer ({num_layers}). Received: "
                f"attention_window={attention_window!r}."
            )

        # === Layers ===
        self.embeddings = LongformerEmbeddings(
            vocabulary_size=vocabulary_size,
            hidden_dim=hidden_dim,
            max_sequence_length=max_sequence_length,
            pad_token_id=pad_token_id,
            layer_norm_epsilon=layer_norm_epsilon,
            dropout=dropout,
            embeddings_initializer=longformer_kernel_initializer(),
            dtype=dtype,
            name="embeddings",
        )
        self.token_embedding = self.embeddings.token_embedding
        self.transformer_layers = [
            LongformerEncoderLayer(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                attention_window=window,
                max_global_tokens=max_global_tokens,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=longformer_kernel_initializer(),
                dtype=dtype,
                name=f"transformer_layer_{index}",
            )
            for index, window in enumerate(windows)
        ]

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(
            shape=(None,), dtype="int32", name="padding_mask"
        )
        x = self.embeddings(token_ids)
        for layer in self.transformer_layers:
            x = layer(x, padding_mask)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=x,
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.attention_window = attention_window
        self.max_global_tokens = max_global_tokens
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.pad_token_id = pad_token_id
        self.layer_norm_epsilon = layer_norm_epsilon
        self.start_token_index = 0

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "attention_window": self.attention_window,
                "max_global_tokens": self.max_global_tokens,
                "dropout": self.dropout,
                "max_sequence_length": self.max_sequence_length,
                "pad_token_id": self.pad_token_id,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
