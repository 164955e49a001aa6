"""BERT: keras-hub's encoder, next sentence prediction, MLM + NSP
pretraining.

Importing this package registers the classes with Keras, so presets written
by `save_to_preset` (or `textmill.trainer.convert.bert.convert_bert`) load
through `keras_hub.models.Backbone.from_preset(dir)` and the task classes'
`from_preset`.
"""

from textmill.trainer.models.bert.bert_backbone import (
    HIDDEN_ACTIVATIONS,
    BertBackbone,
)
from textmill.trainer.models.bert.bert_next_sentence_predictor import (
    IS_NEXT_CLASS,
    BertNextSentencePredictor,
)
from textmill.trainer.models.bert.bert_presets import backbone_presets
from textmill.trainer.models.bert.bert_pretrainer import BertPretrainer
from textmill.trainer.models.bert.bert_pretrainer_mask_generator import (
    BertPretrainerMaskGenerator,
)

__all__ = [
    "HIDDEN_ACTIVATIONS",
    "IS_NEXT_CLASS",
    "BertBackbone",
    "BertNextSentencePredictor",
    "BertPretrainer",
    "BertPretrainerMaskGenerator",
    "backbone_presets",
]
