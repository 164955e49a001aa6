"""Longformer masked language model."""

import keras
from keras_hub.layers import MaskedLMHead
from keras_hub.models import MaskedLM

from textmill.trainer.models.longformer.longformer_backbone import (
    LongformerBackbone,
    longformer_kernel_initializer,
    with_global_start_token,
)
from textmill.trainer.models.task_preset import save_task_preset


@keras.saving.register_keras_serializable(package="textmill")
class LongformerMaskedLM(MaskedLM):
    """Longformer with RoBERTa's masked-language-modeling head.

    The head is dense -> GELU -> layer norm -> projection onto the (tied)
    token embedding matrix plus a per-token bias, applied at
    `mask_positions`. Pair it with `LongformerMaskedLMMaskGenerator` to mask
    batches on the fly (15% of tokens; 80% `<mask>`, 10% random, 10% kept).

    Inputs are a dict of `"token_ids"`, `"padding_mask"` (`0` padding, `1`
    local, `2` global) and `"mask_positions"` `(batch, num_masked)`; the
    output is logits `(batch, num_masked, vocabulary_size)`.

    Args:
        backbone: a `LongformerBackbone`.
        preprocessor: `None` (inputs arrive tokenized and masked) or a
            preprocessing layer.
        global_start_token: bool. If `True` (default), `<s>` at position 0 gets
            global attention in addition to any token the mask marks `2`.
        **kwargs: other `keras_hub.models.MaskedLM` arguments.

    Example:
    ```python
    config = backbone_presets["longformer_tiny"]["config"]
    backbone = LongformerBackbone(**config)
    masked_lm = LongformerMaskedLM(backbone)
    masker = LongformerMaskedLMMaskGenerator(
        vocabulary_size=backbone.vocabulary_size, mask_selection_length=8,
        mask_token_id=4,
    )
    ds = tf.data.Dataset.from_tensor_slices(
        {"token_ids": token_ids, "padding_mask": padding_mask}
    ).batch(8).map(masker)
    masked_lm.fit(ds, epochs=1)
    ```
    """

    backbone_cls = LongformerBackbone
    preprocessor_cls = None

    def __init__(
        self,
        backbone: LongformerBackbone,
        preprocessor=None,
        global_start_token: bool = True,
        **kwargs,
    ):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.masked_lm_head = MaskedLMHead(
            vocabulary_size=backbone.vocabulary_size,
            token_embedding=backbone.token_embedding,
            intermediate_activation="gelu",
            layer_norm_epsilon=backbone.layer_norm_epsilon,
            kernel_initializer=longformer_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )

        # === Functional Model ===
        inputs = {
            **backbone.input,
            "mask_positions": keras.Input(
                shape=(None,), dtype="int32", name="mask_positions"
            ),
        }
        padding_mask = inputs["padding_mask"]
        if global_start_token:
            padding_mask = with_global_start_token(padding_mask)
        hidden = backbone(
            {"token_ids": inputs["token_ids"], "padding_mask": padding_mask}
        )
        outputs = self.masked_lm_head(hidden, inputs["mask_positions"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.global_start_token = global_start_token

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
        config.update({"global_start_token": self.global_start_token})
        return config
