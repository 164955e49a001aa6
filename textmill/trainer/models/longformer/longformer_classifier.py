"""Longformer sequence classifier."""

import keras
from keras_hub.models import TextClassifier

from textmill.trainer.models.longformer.longformer_backbone import (
    LongformerBackbone,
    longformer_kernel_initializer,
    with_global_start_token,
)
from textmill.trainer.models.task_preset import save_task_preset


@keras.saving.register_keras_serializable(package="textmill")
class LongformerClassifier(TextClassifier):
    """Longformer with RoBERTa's classification head on `<s>`.

    `<s>` (position 0) gets global attention, so it sees the whole document;
    its final hidden state goes through dropout -> dense(tanh) -> dropout ->
    dense(num_classes).

    Inputs are a dict of `"token_ids"` and `"padding_mask"` (`0` padding,
    `1` local, `2` global); the output is `(batch, num_classes)` logits
    (or `activation` of them).

    Args:
        backbone: a `LongformerBackbone`.
        num_classes: int. Number of classes.
        preprocessor: `None` (inputs arrive tokenized) or a preprocessing
            layer.
        activation: activation of the output, `None` for logits.
        dropout: float. Dropout before each head dense. Defaults to `0.1`.
        **kwargs: other `keras_hub.models.TextClassifier` arguments.

    Example:
    ```python
    config = backbone_presets["longformer_tiny"]["config"]
    backbone = LongformerBackbone(**config)
    classifier = LongformerClassifier(backbone, num_classes=2)
    classifier.fit(
        {"token_ids": token_ids, "padding_mask": padding_mask}, labels
    )
    ```
    """

    backbone_cls = LongformerBackbone
    preprocessor_cls = None

    def __init__(
        self,
        backbone: LongformerBackbone,
        num_classes: int,
        preprocessor=None,
        activation=None,
        dropout: float = 0.1,
        **kwargs,
    ):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.pooled_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="pooled_dropout"
        )
        self.pooled_dense = keras.layers.Dense(
            backbone.hidden_dim,
            activation="tanh",
            kernel_initializer=longformer_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="pooled_dense",
        )
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="output_dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_classes,
            activation=activation,
            kernel_initializer=longformer_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="logits",
        )

        # === Functional Model ===
        inputs = backbone.input
        hidden = backbone(
            {
                "token_ids": inputs["token_ids"],
                "padding_mask": with_global_start_token(inputs["padding_mask"]),
            }
        )
        x = hidden[:, backbone.start_token_index, :]
        x = self.pooled_dense(self.pooled_dropout(x))
        outputs = self.output_dense(self.output_dropout(x))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        self.dropout = dropout

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Saves the task as a keras-hub preset (a preprocessor is optional).

        Args:
            preset_dir: directory to write.
            max_shard_size: largest backbone weight file, in GB.
        """
        if self.preprocessor is not None:
            super().save_to_preset(preset_dir, max_shard_size=max_shard_size)
        else:
            save_task_preset(self, preset_dir, max_shard_size=max_shard_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
            }
        )
        return config
