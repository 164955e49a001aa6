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

from textmill.features import (
    PADDING_MASK_FEATURE,
    SEGMENT_IDS_FEATURE,
    SENTENCE_A_FEATURE,
    SENTENCE_B_FEATURE,
    TOKEN_IDS_FEATURE,
)
from textmill.serving.signatures import LOGITS_FROM_IDS, SERVING_DEFAULT
from textmill.trainer.models.bert.bert_next_sentence_predictor import (
    IS_NEXT_CLASS,
)

MODEL_INPUTS = (TOKEN_IDS_FEATURE, SEGMENT_IDS_FEATURE, PADDING_MASK_FEATURE)


class NextSentenceServing:
    """The functions behind the exported signatures.

    Args:
        model: a BertNextSentencePredictor.
        tft_output: the Transform output that packs raw pairs.
    """

    def __init__(self, model, tft_output):
        self.model = model
        self.tft_layer = tft_output.transform_features_layer()
        self.raw_spec = tft_output.raw_feature_spec()

    def _raw(self, name: str, text: tf.Tensor) -> tf.Tensor:
        if self.raw_spec[name].shape == [1]:
            return text[:, tf.newaxis]  # [batch] -> [batch, 1]
        return text

    def predict(self, sentence_a: tf.Tensor, sentence_b: tf.Tensor) -> dict:
        features = self.tft_layer(
            {
                SENTENCE_A_FEATURE: self._raw(SENTENCE_A_FEATURE, sentence_a),
                SENTENCE_B_FEATURE: self._raw(SENTENCE_B_FEATURE, sentence_b),
            }
        )
        logits = self.model(
            {name: tf.cast(features[name], tf.int32) for name in MODEL_INPUTS}
        )
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        return {"is_next_probability": probabilities[:, IS_NEXT_CLASS]}

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
    """Writes the serving SavedModel (see module doc) and the bare network.

    Args:
        model: the trained BertNextSentencePredictor.
        tft_output: Transform output whose graph packs raw pairs.
        export_dir: the Trainer's serving_model_dir.
        network_dir: destination of the bare network, the TFLite source.
        sequence_length: the packed length.
    """
    serving = NextSentenceServing(model, tft_output)
    pair = [
        tf.TensorSpec([None], tf.string, name=SENTENCE_A_FEATURE),
        tf.TensorSpec([None], tf.string, name=SENTENCE_B_FEATURE),
    ]
    ids = [
        tf.TensorSpec([1, sequence_length], tf.int32, name=name)
        for name in MODEL_INPUTS
    ]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(serving.tft_layer)
    archive.add_endpoint(SERVING_DEFAULT, serving.predict, pair)
    archive.add_endpoint(LOGITS_FROM_IDS, serving.logits_from_ids, ids)
    archive.write_out(export_dir, verbose=False)

    network = keras.export.ExportArchive()
    network.track(model)
    network.add_endpoint(LOGITS_FROM_IDS, serving.logits_from_ids, ids)
    network.write_out(network_dir, verbose=False)
