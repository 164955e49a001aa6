"""Exports a trained next-sentence-prediction model on raw strings.

Signatures:
    serving_default(sentence_a, sentence_b: string[batch]) ->
        is_next_probability float32[batch]: the probability that B follows A,
        after the Transform graph tokenizes and packs the pair.
    logits_from_ids(token_ids, segment_ids, padding_mask: int32[1, L]) ->
        logits [1, 2]: the bare network, the graph TFLite converts.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_transform as tft

from textmill.features import (
    PADDING_MASK_FEATURE,
    SEGMENT_IDS_FEATURE,
    SENTENCE_A_FEATURE,
    SENTENCE_B_FEATURE,
    TOKEN_IDS_FEATURE,
)
from textmill.serving.exporter import Exporter
from textmill.serving.signatures import SERVING_DEFAULT
from textmill.trainer.models.bert.bert_next_sentence_predictor import (
    IS_NEXT_CLASS,
)

MODEL_INPUTS = (TOKEN_IDS_FEATURE, SEGMENT_IDS_FEATURE, PADDING_MASK_FEATURE)


class NextSentenceServing(Exporter):
    """The functions behind the exported signatures.

    Args:
        model: a BertNextSentencePredictor.
        tft_output: the Transform output that packs raw pairs.
        sequence_length: the packed length.
    """

    def __init__(
        self,
        model: keras.Model,
        tft_output: tft.TFTransformOutput,
        sequence_length: int,
    ):
        super().__init__(model, tft_output)
        self.sequence_length = sequence_length

    def predict(self, sentence_a: tf.Tensor, sentence_b: tf.Tensor) -> dict:
        features = self.tft_layer(
            {
                SENTENCE_A_FEATURE: self.raw_feature(
                    SENTENCE_A_FEATURE, sentence_a
                ),
                SENTENCE_B_FEATURE: self.raw_feature(
                    SENTENCE_B_FEATURE, sentence_b
                ),
            }
        )
        logits = self.model(
            {name: tf.cast(features[name], tf.int32) for name in MODEL_INPUTS}
        )
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        return {"is_next_probability": probabilities[:, IS_NEXT_CLASS]}

    def add_serving_endpoints(self, archive) -> None:
        """`serving_default` on raw sentence pairs."""
        pair = [
            tf.TensorSpec([None], tf.string, name=SENTENCE_A_FEATURE),
            tf.TensorSpec([None], tf.string, name=SENTENCE_B_FEATURE),
        ]
        archive.add_endpoint(SERVING_DEFAULT, self.predict, pair)

    def token_ids_specs(self) -> list[tf.TensorSpec]:
        return [
            tf.TensorSpec([1, self.sequence_length], tf.int32, name=name)
            for name in MODEL_INPUTS
        ]

    def logits_from_ids(self, token_ids, segment_ids, padding_mask) -> dict:
        logits = self.model(
            {
                TOKEN_IDS_FEATURE: token_ids,
                SEGMENT_IDS_FEATURE: segment_ids,
                PADDING_MASK_FEATURE: padding_mask,
            }
        )
        return {"logits": tf.cast(logits, tf.float32)}


def export_next_sentence(
    model, tft_output, export_dir: str, network_dir: str, sequence_length: int
) -> None:
    """Writes `NextSentenceServing`'s serving SavedModel to `export_dir`
    and its bare network to `network_dir` (`Exporter.export`)."""
    NextSentenceServing(model, tft_output, sequence_length).export(
        export_dir, network_dir
    )
