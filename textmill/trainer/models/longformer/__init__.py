"""Longformer: sliding-window + global attention encoder, MLM, classifier.

Importing this package registers the classes with Keras, so presets written
by `save_to_preset` (or the checkpoint converters) load through
`keras_hub.models.Backbone.from_preset(dir)` and the task classes'
`from_preset`.
"""

from textmill.trainer.models.longformer.longformer_backbone import (
    LongformerBackbone,
)
from textmill.trainer.models.longformer.longformer_classifier import (
    LongformerClassifier,
)
from textmill.trainer.models.longformer.longformer_embeddings import (
    LongformerEmbeddings,
)
from textmill.trainer.models.longformer.longformer_encoder_layer import (
    LongformerEncoderLayer,
)
from textmill.trainer.models.longformer.longformer_masked_lm import (
    LongformerMaskedLM,
)
from textmill.trainer.models.longformer.longformer_masked_lm_mask_generator import (  # noqa: E501
    LongformerMaskedLMMaskGenerator,
)
from textmill.trainer.models.longformer.longformer_presets import (
    backbone_presets,
)
from textmill.trainer.models.longformer.longformer_self_attention import (
    LongformerSelfAttention,
)

__all__ = [
    "LongformerBackbone",
    "LongformerClassifier",
    "LongformerEmbeddings",
    "LongformerEncoderLayer",
    "LongformerMaskedLM",
    "LongformerMaskedLMMaskGenerator",
    "LongformerSelfAttention",
    "backbone_presets",
]
