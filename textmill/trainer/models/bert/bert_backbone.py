"""keras-hub's BERT encoder with BERT's exact GELU available."""

import keras
import keras_hub
from keras_hub.src.utils.keras_utils import gelu_approximate

# Feed-forward activations by name: BERT's exact (erf) GELU, and the tanh
# approximation keras-hub's BertBackbone always uses.
HIDDEN_ACTIVATIONS = {
    "gelu": keras.activations.gelu,
    "gelu_approximate": gelu_approximate,
}


@keras.saving.register_keras_serializable(package="textmill")
class BertBackbone(keras_hub.models.BertBackbone):
    """keras-hub's `BertBackbone` with a choice of feed-forward GELU.

    keras-hub's BERT encoder always uses the tanh approximation of GELU,
    while BERT checkpoints (Google's, and Hugging Face's with
    `hidden_act="gelu"`) were trained with the exact erf form. The two
    differ by up to 4.7e-4 per activation, which moves a converted
    checkpoint's logits far beyond float32 round-off. `hidden_activation`
    picks the form; everything else (layers, weights, inputs, outputs,
    presets) is keras-hub's, so the model loads with
    `keras_hub.models.Backbone.from_preset` once this module is imported.

    Args:
        vocabulary_size: int. Number of token ids.
        num_layers: int. Transformer layers.
        num_heads: int. Attention heads per layer; divides `hidden_dim`.
        hidden_dim: int. Width of the encoder and the pooler.
        intermediate_dim: int. Width of the feed-forward layers.
        dropout: float. Dropout rate of embeddings, attention and
            feed-forward outputs.
        max_sequence_length: int. Number of learned positions.
        num_segments: int. Number of segment (token type) ids.
        hidden_activation: `"gelu"` (exact, BERT's) or `"gelu_approximate"`
            (tanh, keras-hub's). The masked LM head uses the same one.
        dtype: dtype or `keras.DTypePolicy` of computations and weights.
        **kwargs: other `keras_hub.models.Backbone` arguments.

    Call arguments:
        inputs: dict of int `"token_ids"`, `"segment_ids"` and
            `"padding_mask"`, each `(batch, length)`.

    Returns:
        `{"sequence_output": (batch, length, hidden_dim), "pooled_output":
        (batch, hidden_dim)}`; the pooled output is tanh(dense([CLS])).

    Example:
    ```python
    backbone = BertBackbone(**backbone_presets["bert_tiny"]["config"])
    outputs = backbone({
        "token_ids": np.array([[2, 17, 3, 40, 3, 0]]),
        "segment_ids": np.array([[0, 0, 0, 1, 1, 0]]),
        "padding_mask": np.array([[1, 1, 1, 1, 1, 0]]),
    })
    ```

    Reference:
        Devlin et al., 2019, "BERT: Pre-training of Deep Bidirectional
        Transformers for Language Understanding".
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        max_sequence_length: int = 512,
        num_segments: int = 2,
        hidden_activation: str = "gelu",
        dtype=None,
        **kwargs,
    ):
        if hidden_activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(
                f"hidden_activation={hidden_activation!r} is not supported; "
                f"pass one of {', '.join(HIDDEN_ACTIVATIONS)}."
            )
        super().__init__(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            max_sequence_length=max_sequence_length,
            num_segments=num_segments,
            dtype=dtype,
            **kwargs,
        )
        # The functional graph calls these layers again at run time, and a
        # Dense layer reads its activation when called.
        activation = HIDDEN_ACTIVATIONS[hidden_activation]
        for layer in self.transformer_layers:
            layer.activation = activation
            layer._feedforward_intermediate_dense.activation = activation

        # === Config ===
        self.hidden_activation = hidden_activation

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_activation": self.hidden_activation})
        return config
