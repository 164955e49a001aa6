"""BERT next sentence prediction: does segment B follow segment A?"""

import keras
from keras_hub.models import Task
from keras_hub.src.models.bert.bert_backbone import bert_kernel_initializer
from keras_hub.src.utils.preset_utils import (
    TASK_CONFIG_FILE,
    check_config_class,
    check_file_exists,
    load_json,
)

from textmill.trainer.models.bert.bert_backbone import BertBackbone
from textmill.trainer.models.task_preset import save_task_preset

# Head output index of "B follows A" (the `is_next` label).
IS_NEXT_CLASS = 1


@keras.saving.register_keras_serializable(package="textmill")
class BertNextSentencePredictor(Task):
    """BERT with the next-sentence-prediction head on its pooled output.

    The head is one dense layer from the pooled output (tanh(dense([CLS])))
    to two logits, as BERT's `cls.seq_relationship`; no dropout comes
    between them. Logit 1 is "B follows A", the `is_next` label of
    `SentencePairGen` (BERT's own checkpoints order the classes the other
    way round; the converter swaps them).

    Inputs are the dict `"token_ids"`, `"segment_ids"` and `"padding_mask"`
    `(batch, length)` of `[CLS] A [SEP] B [SEP]`, as Transform packs them;
    the output is logits `(batch, 2)`.

    `from_preset` loads a preset of this task, or the NSP head of a
    `BertPretrainer` preset (e.g. a converted `BertForPreTraining`).

    Args:
        backbone: a textmill `BertBackbone`.
        preprocessor: `None` (inputs arrive packed) or a preprocessing
            layer.
        **kwargs: other `keras_hub.models.Task` arguments.

    Example:
    ```python
    backbone = BertBackbone(**backbone_presets["bert_tiny"]["config"])
    predictor = BertNextSentencePredictor(backbone)
    predictor.fit(dataset.map(lambda f: (f, f.pop("is_next"))), epochs=1)
    probability = keras.ops.softmax(predictor.predict(features))[:, 1]
    ```
    """

    backbone_cls = BertBackbone
    preprocessor_cls = None

    def __init__(self, backbone: BertBackbone, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.next_sentence_head = keras.layers.Dense(
            2,
            kernel_initializer=bert_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="next_sentence_head",
        )

        # === Functional Model ===
        inputs = backbone.input
        pooled = backbone(inputs)["pooled_output"]
        outputs = self.next_sentence_head(pooled)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        metrics="auto",
        **kwargs,
    ):
        """Configures training; `"auto"` picks NSP's defaults.

        Args:
            optimizer: `"auto"` (Adam, 5e-5) or any Keras optimizer.
            loss: `"auto"` (sparse cross-entropy on logits) or any loss.
            metrics: `"auto"` (accuracy) or any metrics.
            **kwargs: other `keras.Model.compile` arguments.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(5e-5)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy("accuracy")]
        super().compile(
            optimizer=optimizer, loss=loss, metrics=metrics, **kwargs
        )

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Loads the task from a preset directory.

        Args:
            preset: a preset directory of this task, of a `BertPretrainer`
                (its NSP head is taken) or of a `BertBackbone` (the head
                starts random).
            load_weights: whether to load the saved weights.
            **kwargs: other `keras_hub.models.Task.from_preset` arguments.

        Returns:
            A `BertNextSentencePredictor`.
        """
        # Imported here: the pretrainer module imports this one.
        from textmill.trainer.models.bert.bert_pretrainer import (
            BertPretrainer,
        )

        # keras-hub's preset files work for local, gs:// and hub presets.
        if check_file_exists(preset, TASK_CONFIG_FILE) and issubclass(
            check_config_class(load_json(preset, TASK_CONFIG_FILE)),
            BertPretrainer,
        ):
            pretrainer = BertPretrainer.from_preset(
                preset, load_weights=load_weights, **kwargs
            )
            return pretrainer.next_sentence_predictor()
        return super().from_preset(preset, load_weights=load_weights, **kwargs)

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
