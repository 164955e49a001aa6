"""Exports a trained Longformer classifier as a SavedModel on raw strings.

Signatures:
    classify(text: string[batch]) -> label string[batch] (the most
        probable class), probability float32[batch] (its probability),
        probabilities float32[batch, classes] and labels string[batch,
        classes] (the class names, in the order of `probabilities`). The
        text is tokenized by the Transform graph and cut to the model's
        length, as in training; `<s>` has global attention.
    serving_default: the same function.
    logits_from_ids(token_ids, padding_mask: int32[1, L]) -> logits
        [1, classes]: the bare network, the graph TFLite converts.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_transform as tft

from textmill.features import (
    PADDING_MASK_FEATURE,
    TEXT_FEATURE,
    TOKEN_IDS_FEATURE,
)
from textmill.serving.exporter import Exporter
from textmill.serving.signatures import CLASSIFY, SERVING_DEFAULT


def document_inputs(
    ids: tf.RaggedTensor, sequence_length: int, special_ids: dict
) -> dict:
    """The classifier's inputs: `<s>`, the first `sequence_length - 2`
    tokens of each document, `</s>`, padded to `sequence_length`.

    Args:
        ids: int32 token ids [batch, (tokens)].
        sequence_length: the model's input length.
        special_ids: ids of `bos`, `eos` and `pad`.

    Returns:
        `{"token_ids", "padding_mask"}`, int32 [batch, sequence_length]
        (mask 1 on tokens; the model makes `<s>` global).
    """
    body = ids[:, : sequence_length - 2]
    rows = body.nrows()
    full = tf.concat(
        [
            tf.fill([rows, 1], tf.constant(special_ids["bos"], tf.int32)),
            body,
            tf.fill([rows, 1], tf.constant(special_ids["eos"], tf.int32)),
        ],
        axis=1,
    )
    return {
        TOKEN_IDS_FEATURE: full.to_tensor(
            special_ids["pad"], shape=[None, sequence_length]
        ),
        PADDING_MASK_FEATURE: tf.sequence_mask(
            full.row_lengths(), sequence_length, tf.int32
        ),
    }


class ClassifierServing(Exporter):
    """The functions behind the exported signatures.

    Args:
        model: a LongformerClassifier.
        tft_output: the Transform output that tokenizes raw text.
        sequence_length: the model's input length.
        special_ids: ids of `bos`, `eos` and `pad`.
        labels: the class names, by class id.
    """

    def __init__(
        self,
        model: keras.Model,
        tft_output: tft.TFTransformOutput,
        sequence_length: int,
        special_ids: dict,
        labels: tuple[str, ...],
    ):
        super().__init__(model, tft_output)
        self.sequence_length = sequence_length
        self.ids = special_ids
        self.labels = tuple(labels)

    def classify(self, text: tf.Tensor) -> dict:
        inputs = document_inputs(
            self.token_ids(text), self.sequence_length, self.ids
        )
        logits = tf.cast(self.model(inputs), tf.float32)
        probabilities = tf.nn.softmax(logits)
        names = tf.constant(self.labels)
        best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {
            "label": tf.gather(names, best),
            "probability": tf.reduce_max(probabilities, axis=-1),
            "probabilities": probabilities,
            # [classes] -> [batch, classes]
            "labels": tf.tile(names[tf.newaxis], [tf.shape(best)[0], 1]),
        }

    def add_serving_endpoints(self, archive) -> None:
        """`classify`, also as `serving_default`."""
        text = [tf.TensorSpec([None], tf.string, name=TEXT_FEATURE)]
        archive.add_endpoint(CLASSIFY, self.classify, text)
        archive.add_endpoint(SERVING_DEFAULT, self.classify, text)

    def token_ids_specs(self) -> list[tf.TensorSpec]:
        return [
            tf.TensorSpec([1, self.sequence_length], tf.int32, name=name)
            for name in (TOKEN_IDS_FEATURE, PADDING_MASK_FEATURE)
        ]

    def logits_from_ids(self, token_ids, padding_mask) -> dict:
        logits = self.model(
            {TOKEN_IDS_FEATURE: token_ids, PADDING_MASK_FEATURE: padding_mask}
        )
        return {"logits": tf.cast(logits, tf.float32)}
