"""Exports a trained Longformer masked LM as a SavedModel on raw strings.

Signatures:
    fill_mask(text: string[batch]) -> top_tokens string[batch, masks, k],
        top_token_ids, top_scores (log-probabilities), num_masks int32[batch]:
        the literal `<mask>` in the text marks the positions to fill.
    embed(text: string[batch]) -> embedding float32[batch, hidden]: the
        `<s>` token's final hidden state (it has global attention).
    logits_from_ids(token_ids, padding_mask: int32[1, L]) -> logits
        [1, L, vocab]: the bare network, the graph TFLite converts.
        `padding_mask` is 0 for padding, 1 for a token, 2 for a token with
        global attention (`<s>` always has it).

Global tokens: a model built with `max_global_tokens=None` (the default)
sizes its global attention from each input, so the signatures, and the
TFLite model, take any number of tokens marked 2. A model built with a static
bound keeps it: an input with more global tokens fails in the SavedModel
(`InvalidArgumentError` naming `max_global_tokens`) and gives NaN logits in
TFLite, whose converter drops run-time checks.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_transform as tft

from textmill.features import (
    MASK_POSITIONS_FEATURE,
    PADDING_MASK_FEATURE,
    TEXT_FEATURE,
    TOKEN_IDS_FEATURE,
)
from textmill.serving.exporter import Exporter, write_archive
from textmill.serving.signatures import EMBED, FILL_MASK, LOGITS_FROM_IDS

MASK_TEXT = "<mask>"


class MaskedLMServing(Exporter):
    """The functions behind the exported signatures.

    Args:
        model: a LongformerMaskedLM.
        tft_output: the Transform output that tokenizes raw text.
        sequence_length: model input length (texts are cut to fit).
        special_ids: ids of `<s>`, `<pad>`, `</s>` and `<mask>`.
        top_k: candidates returned per `<mask>`.
    """

    def __init__(
        self,
        model: keras.Model,
        tft_output: tft.TFTransformOutput,
        sequence_length: int,
        special_ids: dict,
        top_k: int = 5,
    ):
        super().__init__(model, tft_output, byte_bpe=True)
        self.sequence_length = sequence_length
        self.ids = special_ids
        self.top_k = top_k

    def _inputs(self, text: tf.Tensor):
        """Texts -> padded `<s> ... </s>` ids with `<mask>` ids where the
        text says `<mask>`, and the padding mask (1 = real token)."""
        segments = tf.strings.split(text, MASK_TEXT)  # [batch, pieces]
        pieces = self.token_ids(segments.flat_values)  # [pieces, tokens]
        mask = tf.fill([pieces.nrows(), 1], self.ids["mask"])
        # Each piece is followed by <mask>; the last piece's one is dropped.
        pieces = tf.concat([pieces, mask], axis=1)
        ids = tf.RaggedTensor.from_row_splits(
            pieces, segments.row_splits
        ).merge_dims(1, 2)
        ids = ids[:, :-1][:, : self.sequence_length - 2]
        rows = ids.nrows()
        ids = tf.concat(
            [
                tf.fill([rows, 1], self.ids["bos"]),
                ids,
                tf.fill([rows, 1], self.ids["eos"]),
            ],
            axis=1,
        )
        token_ids = ids.to_tensor(self.ids["pad"])
        padding_mask = tf.sequence_mask(
            ids.row_lengths(), tf.shape(token_ids)[1], tf.int32
        )
        return token_ids, padding_mask

    def fill_mask(self, text: tf.Tensor) -> dict:
        token_ids, padding_mask = self._inputs(text)
        is_mask = tf.equal(token_ids, self.ids["mask"])
        # [batch, masks]: positions of <mask>, padded with 0 (<s>).
        positions = tf.ragged.boolean_mask(
            tf.broadcast_to(
                tf.range(tf.shape(token_ids)[1]), tf.shape(token_ids)
            ),
            is_mask,
        ).to_tensor(0)
        logits = self.model(
            {
                TOKEN_IDS_FEATURE: token_ids,
                PADDING_MASK_FEATURE: padding_mask,
                MASK_POSITIONS_FEATURE: positions,
            }
        )
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        scores, top_ids = tf.math.top_k(log_probs, k=self.top_k)
        shape = tf.shape(top_ids)
        tokens = self.tokenizer.detokenize(
            tf.reshape(top_ids, [-1, 1])
        )  # one string per candidate id
        return {
            "top_token_ids": top_ids,
            "top_tokens": tf.reshape(tokens, shape),
            "top_scores": scores,
            # Rows have different numbers of <mask>; slots past a row's
            # count are padding.
            "num_masks": tf.reduce_sum(tf.cast(is_mask, tf.int32), axis=1),
        }

    def embed(self, text: tf.Tensor) -> dict:
        token_ids, padding_mask = self._inputs(text)
        # Global attention on <s>, the convention for document embeddings.
        padding_mask = tf.concat(
            [tf.fill([tf.shape(padding_mask)[0], 1], 2), padding_mask[:, 1:]],
            axis=1,
        )
        hidden = self.model.backbone(
            {TOKEN_IDS_FEATURE: token_ids, PADDING_MASK_FEATURE: padding_mask}
        )
        return {"embedding": tf.cast(hidden[:, 0], tf.float32)}

    def add_serving_endpoints(self, archive) -> None:
        """`fill_mask` and `embed`."""
        text = [tf.TensorSpec([None], tf.string, name=TEXT_FEATURE)]
        archive.add_endpoint(FILL_MASK, self.fill_mask, text)
        archive.add_endpoint(EMBED, self.embed, text)

    def token_ids_specs(self) -> list[tf.TensorSpec]:
        return _ids_spec(self.sequence_length)

    def logits_from_ids(self, token_ids, padding_mask) -> dict:
        return logits_from_ids(self.model, token_ids, padding_mask)


def logits_from_ids(model, token_ids, padding_mask) -> dict:
    """Logits at every position of a `[1, L]` input, see the module doc."""
    positions = tf.range(tf.shape(token_ids)[1])[tf.newaxis, :]
    logits = model(
        {
            TOKEN_IDS_FEATURE: token_ids,
            PADDING_MASK_FEATURE: padding_mask,
            MASK_POSITIONS_FEATURE: positions,
        }
    )
    return {"logits": tf.cast(logits, tf.float32)}


def _ids_spec(sequence_length: int) -> list[tf.TensorSpec]:
    return [
        tf.TensorSpec([1, sequence_length], tf.int32, name=TOKEN_IDS_FEATURE),
        tf.TensorSpec(
            [1, sequence_length], tf.int32, name=PADDING_MASK_FEATURE
        ),
    ]


def export_network(model, network_dir: str, sequence_length: int) -> None:
    """Writes the bare network's `logits_from_ids`, the TFLite source.

    Args:
        model: a LongformerMaskedLM.
        network_dir: the SavedModel directory to write.
        sequence_length: the fixed input length `L`.
    """

    def add_logits_endpoint(archive: keras.export.ExportArchive) -> None:
        archive.add_endpoint(
            LOGITS_FROM_IDS,
            lambda token_ids, padding_mask: logits_from_ids(
                model, token_ids, padding_mask
            ),
            _ids_spec(sequence_length),
        )

    write_archive(network_dir, [model], add_logits_endpoint)


def export_masked_lm(
    model,
    tft_output,
    export_dir: str,
    network_dir: str,
    sequence_length: int,
    special_ids: dict,
) -> None:
    """Writes `MaskedLMServing`'s serving SavedModel to `export_dir` and
    its bare network to `network_dir` (`Exporter.export`)."""
    MaskedLMServing(model, tft_output, sequence_length, special_ids).export(
        export_dir, network_dir
    )
