"""RoBERTa-style embeddings used by Longformer."""

import keras
from keras import ops
from keras_hub.layers import ReversibleEmbedding

from textmill.trainer.models.longformer.longformer_self_attention import (
    clone_initializer,
)


@keras.saving.register_keras_serializable(package="textmill")
class LongformerEmbeddings(keras.layers.Layer):
    """Token + position + token-type embeddings, layer norm and dropout.

    Positions follow RoBERTa: a token's position id is the number of
    non-padding tokens up to and including it, plus `pad_token_id`; padding
    tokens get position id `pad_token_id`. Padding is recognised by token id
    (`token_ids == pad_token_id`), as RoBERTa does, so left or inner padding
    does not shift the positions of real tokens. The position table therefore
    has `max_sequence_length + pad_token_id + 1` rows (4098 for Longformer's
    4096 tokens). Longformer has a single token type, so its embedding is one
    learned vector added to every token.

    Args:
        vocabulary_size: int. Size of the token vocabulary.
        hidden_dim: int. Embedding size.
        max_sequence_length: int. Longest sequence the position table covers.
        pad_token_id: int. Id of the padding token. Defaults to `1`.
        layer_norm_epsilon: float. Layer norm epsilon. Defaults to `1e-5`.
        dropout: float. Dropout rate after the layer norm.
        embeddings_initializer: initializer for the three embeddings.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        token_ids: int tensor `(batch, length)`.
        training: bool, whether dropout is active.

    Example:
    ```python
    embeddings = LongformerEmbeddings(
        vocabulary_size=100, hidden_dim=16, max_sequence_length=64
    )
    x = embeddings(np.array([[0, 5, 6, 2, 1, 1]]))  # (1, 6, 16)
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        hidden_dim: int,
        max_sequence_length: int,
        pad_token_id: int = 1,
        layer_norm_epsilon: float = 1e-5,
        dropout: float = 0.0,
        embeddings_initializer="uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim
        self.max_sequence_length = max_sequence_length
        self.pad_token_id = pad_token_id
        self.layer_norm_epsilon = layer_norm_epsilon
        self.dropout = dropout
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
        )
        # Created here (not in build) so that a masked LM head can tie its
        # output projection to it before the backbone is built.
        self.token_embedding = ReversibleEmbedding(
            vocabulary_size,
            hidden_dim,
            embeddings_initializer=clone_initializer(
                self.embeddings_initializer
            ),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.position_embedding = keras.layers.Embedding(
            max_sequence_length + pad_token_id + 1,
            hidden_dim,
            embeddings_initializer=clone_initializer(
                self.embeddings_initializer
            ),
            dtype=self.dtype_policy,
            name="position_embedding",
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="layer_norm",
        )
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="dropout"
        )

    def build(self, token_ids_shape):
        self.token_embedding.build(token_ids_shape)
        self.position_embedding.build(token_ids_shape)
        self.token_type_embedding = self.add_weight(
            shape=(self.hidden_dim,),
            initializer=clone_initializer(self.embeddings_initializer),
            name="token_type_embedding",
        )
        self.layer_norm.build((*token_ids_shape, self.hidden_dim))
        self.built = True

    def call(self, token_ids, training=None):
        is_token = ops.cast(
            ops.not_equal(token_ids, self.pad_token_id), "int32"
        )
        position_ids = ops.cumsum(is_token, axis=1) * is_token
        position_ids = position_ids + self.pad_token_id
        x = self.token_embedding(token_ids) + self.position_embedding(
            position_ids
        )
        x = x + ops.cast(self.token_type_embedding, self.compute_dtype)
        x = self.layer_norm(x)
        return self.dropout_layer(x, training=training)

    def compute_output_shape(self, token_ids_shape):
        return (*token_ids_shape, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "hidden_dim": self.hidden_dim,
                "max_sequence_length": self.max_sequence_length,
                "pad_token_id": self.pad_token_id,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "dropout": self.dropout,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config
