"""Joint masked-LM + next-sentence-prediction pretraining, as BERT."""

import keras
from keras_hub.layers import MaskedLMHead
from keras_hub.models import Task
from keras_hub.src.models.bert.bert_backbone import bert_kernel_initializer

from textmill.trainer.models.bert.bert_backbone import (
    HIDDEN_ACTIVATIONS,
    BertBackbone,
)
from textmill.trainer.models.bert.bert_next_sentence_predictor import (
    BertNextSentencePredictor,
)
from textmill.trainer.models.task_preset import save_task_preset

MLM_OUTPUT = "mlm"
NSP_OUTPUT = "nsp"
# The layer norm epsilon of BERT's masked LM head.
MLM_LAYER_NORM_EPSILON = 1e-12


@keras.saving.register_keras_serializable(package="textmill")
class BertPretrainer(Task):
    """BERT with both pretraining heads: masked LM and next sentence.

    The masked LM head is BERT's `cls.predictions`: dense -> GELU (the
    backbone's `hidden_activation`) -> layer norm -> projection onto the
    token embedding matrix (tied) plus a per-token bias, at
    `mask_positions`. The NSP head is `BertNextSentencePredictor`'s: two
    logits from the pooled output, logit 1 meaning "B follows A". The loss
    is the sum of both cross-entropies, as in BERT.

    Inputs are `"token_ids"`, `"segment_ids"`, `"padding_mask"` `(batch,
    length)` and `"mask_positions"` `(batch, slots)`; the outputs are
    `{"mlm": (batch, slots, vocabulary_size), "nsp": (batch, 2)}` logits.
    `BertPretrainerMaskGenerator` masks packed batches into this form in
    the input pipeline.

    Args:
        backbone: a textmill `BertBackbone`.
        preprocessor: `None` (inputs arrive packed and masked) or a
            preprocessing layer.
        **kwargs: other `keras_hub.models.Task` arguments.

    Example:
    ```python
    backbone = BertBackbone(**backbone_presets["bert_tiny"]["config"])
    pretrainer = BertPretrainer(backbone)
    masker = BertPretrainerMaskGenerator(
        vocabulary_size=backbone.vocabulary_size, mask_selection_length=20,
        mask_token_id=4, unselectable_token_ids=(0, 2, 3),
    )
    pretrainer.fit(packed_pairs.batch(32).map(masker), epochs=1)
    predictor = pretrainer.next_sentence_predictor()
    ```

    Reference:
        Devlin et al., 2019, "BERT: Pre-training of Deep Bidirectional
        Transformers for Language Understanding", section 3.1.
    """

    backbone_cls = BertBackbone
    preprocessor_cls = None

    def __init__(self, backbone: BertBackbone, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.masked_lm_head = MaskedLMHead(
            vocabulary_size=backbone.vocabulary_size,
            token_embedding=backbone.token_embedding,
            intermediate_activation=HIDDEN_ACTIVATIONS[
                backbone.hidden_activation
            ],
            layer_norm_epsilon=MLM_LAYER_NORM_EPSILON,
            kernel_initializer=bert_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )
        self.next_sentence_head = keras.layers.Dense(
            2,
            kernel_initializer=bert_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="next_sentence_head",
        )

        # === Functional Model ===
        inputs = {
            **backbone.input,
            "mask_positions": keras.Input(
                shape=(None,), dtype="int32", name="mask_positions"
            ),
        }
        encoded = backbone({name: inputs[name] for name in backbone.input})
        outputs = {
            MLM_OUTPUT: self.masked_lm_head(
                encoded["sequence_output"], inputs["mask_positions"]
            ),
            NSP_OUTPUT: self.next_sentence_head(encoded["pooled_output"]),
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        weighted_metrics="auto",
        **kwargs,
    ):
        """Configures training; `"auto"` picks BERT pretraining's defaults.

        Args:
            optimizer: `"auto"` (AdamW, 1e-4) or any Keras optimizer.
            loss: `"auto"` (sparse cross-entropy on logits for both
                outputs, summed) or any loss structure.
            weighted_metrics: `"auto"` (masked-token accuracy weighted by
                the mask weights, and NSP accuracy) or any metrics.
            **kwargs: other `keras.Model.compile` arguments.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(1e-4, weight_decay=0.01)
        if loss == "auto":
            loss = {
                MLM_OUTPUT: keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True
                ),
                NSP_OUTPUT: keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True
                ),
            }
        if weighted_metrics == "auto":
            weighted_metrics = {
                MLM_OUTPUT: [
                    keras.metrics.SparseCategoricalAccuracy("accuracy")
                ],
                NSP_OUTPUT: [
                    keras.metrics.SparseCategoricalAccuracy("accuracy")
                ],
            }
        super().compile(
            optimizer=optimizer,
            loss=loss,
            weighted_metrics=weighted_metrics,
            **kwargs,
        )

    def next_sentence_predictor(self) -> BertNextSentencePredictor:
        """The NSP model of this pretrainer: same backbone, head copied.

        Returns:
            A `BertNextSentencePredictor` sharing this backbone (its
            weights are the same variables) with the NSP head's weights.
        """
        predictor = BertNextSentencePredictor(self.backbone)
        predictor.next_sentence_head.set_weights(
            self.next_sentence_head.get_weights()
        )
        return predictor

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
