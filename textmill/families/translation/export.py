"""Exports a trained encoder-decoder as a SavedModel that translates raw
strings.

Signatures:
    translate(text: string[batch], max_new_tokens: int32[]) -> completion
        [batch] (the translation), token_scores, sequence_score,
        num_new_tokens: greedy decoding, stopping at end-of-text;
        `serving_default` is the same function.
    translate_sample(text, max_new_tokens, temperature, top_k, top_p, seed)
        and translate_beam(text, max_new_tokens, num_beams): sampling and
        beam search, with the inputs, checks and outputs of the causal
        LMs' `generate_sample` and `generate_beam` (see
        `sampling.generation_signatures`).
    logits_from_ids(encoder_token_ids, encoder_padding_mask,
        decoder_token_ids: int32[1, sequence_length]) -> logits: the bare
        network, teacher-forced, the graph TFLite converts.

The source is tokenized by the same in-graph byte-level BPE over the same
files as in Transform (stripped, its first `sequence_length` tokens); the
encoder reads it once and the decoder runs with a key-value cache
(`sampling.seq2seq_generator`).
"""

from __future__ import annotations

import keras_hub
import tensorflow as tf
import tensorflow_transform as tft

from textmill.families.summarization.transform import first_tokens
from textmill.features import (
    DECODER_PADDING_MASK_FEATURE,
    DECODER_TOKEN_IDS_FEATURE,
    ENCODER_PADDING_MASK_FEATURE,
    ENCODER_TOKEN_IDS_FEATURE,
    TEXT_FEATURE,
)
from textmill.serving.exporter import Exporter
from textmill.serving.sampling.generation_signatures import (
    INPUT_SPECS,
    GenerationSignatures,
)
from textmill.serving.sampling.seq2seq_generator import Seq2SeqGenerator
from textmill.serving.signatures import (
    GENERATE,
    GENERATE_BEAM,
    GENERATE_SAMPLE,
    SERVING_DEFAULT,
    TRANSLATE,
    TRANSLATE_BEAM,
    TRANSLATE_SAMPLE,
)

_TEXT = tf.TensorSpec([None], tf.string, name=TEXT_FEATURE)


def _with_text(strategy: str) -> list[tf.TensorSpec]:
    """A generation signature's inputs, the prompt renamed `text`."""
    return [_TEXT, *INPUT_SPECS[strategy][1:]]


class TranslationServing(Exporter):
    """The functions behind the exported signatures (module doc).

    Args:
        model: a keras-hub `BartSeq2SeqLM`.
        tft_output: the Transform output whose vocabulary files tokenize.
        sequence_length: the most source tokens, and decoder positions.
        eos_id: end-of-text id: the decoder's start and stop token.
    """

    def __init__(
        self,
        model: keras_hub.models.BartSeq2SeqLM,
        tft_output: tft.TFTransformOutput,
        sequence_length: int,
        eos_id: int,
    ):
        super().__init__(model, tft_output, byte_bpe=True)
        self.sequence_length = sequence_length
        self.generation = GenerationSignatures(
            Seq2SeqGenerator(model, eos_id, sequence_length),
            self.source_ids,
            self.tokenizer.detokenize,
            stop_token_id=eos_id,
            vocabulary_size=model.backbone.vocabulary_size,
        )

    def source_ids(self, text, max_new_tokens) -> tf.RaggedTensor:
        """The sources' first `sequence_length` token ids, as Transform
        cut them (`max_new_tokens` bounds only the decoder)."""
        del max_new_tokens
        ids = tf.cast(self.tokenizer.tokenize(tf.strings.strip(text)), tf.int32)
        keep = tf.fill(
            [ids.nrows()], tf.constant(self.sequence_length, tf.int64)
        )
        return first_tokens(ids, keep)

    def add_serving_endpoints(self, archive) -> None:
        """Adds the signatures of the module doc but `logits_from_ids`."""
        functions = {
            TRANSLATE: (self.generation.generate, GENERATE),
            SERVING_DEFAULT: (self.generation.generate, GENERATE),
            TRANSLATE_SAMPLE: (
                self.generation.generate_sample,
                GENERATE_SAMPLE,
            ),
            TRANSLATE_BEAM: (self.generation.generate_beam, GENERATE_BEAM),
        }
        for name, (function, strategy) in functions.items():
            archive.add_endpoint(name, function, _with_text(strategy))

    def token_ids_specs(self) -> list[tf.TensorSpec]:
        """The inputs of `logits_from_ids`: a source and a decoder input."""
        shape = [1, self.sequence_length]
        return [
            tf.TensorSpec(shape, tf.int32, name=ENCODER_TOKEN_IDS_FEATURE),
            tf.TensorSpec(shape, tf.int32, name=ENCODER_PADDING_MASK_FEATURE),
            tf.TensorSpec(shape, tf.int32, name=DECODER_TOKEN_IDS_FEATURE),
        ]

    def logits_from_ids(
        self, encoder_token_ids, encoder_padding_mask, decoder_token_ids
    ) -> dict:
        # The decoder is causal: its right padding changes no logit before
        # it, so every decoder position is unmasked.
        logits = self.model(
            {
                ENCODER_TOKEN_IDS_FEATURE: encoder_token_ids,
                ENCODER_PADDING_MASK_FEATURE: encoder_padding_mask,
                DECODER_TOKEN_IDS_FEATURE: decoder_token_ids,
                DECODER_PADDING_MASK_FEATURE: tf.ones_like(decoder_token_ids),
            }
        )
        return {"logits": tf.cast(logits, tf.float32)}
