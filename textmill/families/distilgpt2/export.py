"""Exports a trained causal LM as a SavedModel that takes raw strings.

Signatures:
    serving_default(text: string[batch]) -> next_token_logits [batch, vocab],
        log_likelihood [batch], num_tokens [batch]: the text is tokenized by
        the Transform graph, prefixed with end-of-text, and its last
        `sequence_length - 1` tokens are scored.
    generate(prompt: string[batch], max_new_tokens: int32[]) -> completion
        [batch], token_scores, sequence_score, num_new_tokens: greedy
        continuation, stopping at end-of-text; `generate_sample`,
        `generate_beam` and `generate_contrastive` add the other
        strategies' knobs (see `sampling.generation_signatures`). Decoding
        runs with a key-value cache, XLA-compiled when the exporting
        machine has a GPU or TPU (see `CausalLMGenerator`).
    score_examples(examples: serialized tf.Example[batch]) -> as
        serving_default, reading the raw `text` feature (for TFX tools).
    logits_from_ids(token_ids: int32[1, sequence_length]) -> logits: the
        bare network, the graph that TFLite converts.

The bare-network SavedModel (`network_dir`) has `logits_from_ids` and
`generate_ids` (greedy generation on token ids, the TFLite generation
graph; see `sampling.token_id_generation`), with the tokenizer files in
its `assets.extra`.
"""

from __future__ import annotations

import os

import keras_hub
import tensorflow as tf
import tensorflow_transform as tft

from textmill.features import (
    PADDING_MASK_FEATURE,
    TEXT_FEATURE,
    TOKEN_IDS_FEATURE,
)
from textmill.serving.exporter import Exporter
from textmill.serving.model_formats import network_tokenizer_dir
from textmill.serving.sampling import CausalLMGenerator
from textmill.serving.sampling.generation_signatures import GenerationSignatures
from textmill.serving.sampling.token_id_generation import (
    INPUT_SPECS as GENERATE_IDS_INPUTS,
)
from textmill.serving.sampling.token_id_generation import generate_token_ids
from textmill.serving.signatures import (
    GENERATE_IDS,
    SCORE_EXAMPLES,
    SERIALIZED_EXAMPLES_INPUT,
    SERVING_DEFAULT,
)
from textmill.tokenization.bpe_files import MERGES_FILENAME, VOCAB_FILENAME
from textmill.transform.byte_bpe_text import MERGES_ASSET, VOCAB_ASSET


class CausalLMServing(Exporter):
    """The functions behind the exported signatures.

    Args:
        model: a keras-hub causal LM taking `token_ids` and `padding_mask`.
        tft_output: the Transform output that tokenizes raw text.
        sequence_length: the longest token sequence fed to the model.
        eos_id: end-of-text id (document separator and stop token).
    """

    def __init__(
        self,
        model: keras_hub.models.CausalLM,
        tft_output: tft.TFTransformOutput,
        sequence_length: int,
        eos_id: int,
    ):
        super().__init__(model, tft_output, byte_bpe=True)
        self.tft_output = tft_output
        self.sequence_length = sequence_length
        self.eos_id = eos_id
        self.generation = GenerationSignatures(
            CausalLMGenerator(model, max_length=sequence_length),
            self.prompt_ids,
            self.tokenizer.detokenize,
            stop_token_id=eos_id,
            vocabulary_size=model.backbone.vocabulary_size,
        )

    def _with_bos(self, ids: tf.RaggedTensor, keep) -> tf.RaggedTensor:
        """Keeps the last `keep` (>= 0) tokens of each row, prefixed with
        the end-of-text id."""
        lengths = ids.row_lengths()
        start = lengths - tf.cast(keep, lengths.dtype)  # may be negative
        ids = tf.ragged.boolean_mask(
            ids, tf.ragged.range(lengths) >= start[:, tf.newaxis]
        )
        bos = tf.fill([ids.nrows(), 1], tf.constant(self.eos_id, tf.int32))
        return tf.concat([bos, ids], axis=1)

    def score_text(self, text: tf.Tensor) -> dict:
        ids = self._with_bos(self.token_ids(text), self.sequence_length - 1)
        token_ids = ids.to_tensor(0)  # [batch, length]
        mask = tf.sequence_mask(ids.row_lengths(), tf.shape(token_ids)[1])
        logits = self.model(
            {TOKEN_IDS_FEATURE: token_ids, PADDING_MASK_FEATURE: mask}
        )
        logits = tf.cast(logits, tf.float32)  # [batch, length, vocab]
        log_probs = tf.nn.log_softmax(logits[:, :-1])
        targets = token_ids[:, 1:]
        target_log_probs = tf.gather(log_probs, targets, batch_dims=2)
        target_mask = tf.cast(mask[:, 1:], tf.float32)
        last = tf.cast(ids.row_lengths() - 1, tf.int32)
        return {
            "next_token_logits": tf.gather(logits, last, batch_dims=1),
            "log_likelihood": tf.reduce_sum(
                target_log_probs * target_mask, axis=1
            ),
            "num_tokens": tf.cast(tf.reduce_sum(target_mask, axis=1), tf.int32),
        }

    def score_examples(self, serialized: tf.Tensor) -> dict:
        features = tf.io.parse_example(
            serialized, {TEXT_FEATURE: self.raw_feature_spec[TEXT_FEATURE]}
        )
        return self.score_text(tf.reshape(features[TEXT_FEATURE], [-1]))

    def prompt_ids(self, prompt: tf.Tensor, max_new_tokens) -> tf.RaggedTensor:
        """Generation prompts: end-of-text, then the last tokens that leave
        room for `max_new_tokens` within `sequence_length`."""
        keep = self.sequence_length - 1 - max_new_tokens
        return self._with_bos(self.token_ids(prompt), keep)

    def generate_token_ids(
        self, prompt_ids: tf.Tensor, prompt_lengths: tf.Tensor, max_new_tokens
    ) -> dict:
        """Greedy generation on token ids (the TFLite generation graph)."""
        return generate_token_ids(
            self.model,
            prompt_ids,
            prompt_lengths,
            max_new_tokens,
            bos_id=self.eos_id,
            stop_token_id=self.eos_id,
            max_length=self.sequence_length,
        )

    def add_serving_endpoints(self, archive) -> None:
        """Adds the signatures of the module doc but `logits_from_ids`."""
        text = tf.TensorSpec([None], tf.string)
        archive.add_endpoint(SERVING_DEFAULT, self.score_text, [text])
        self.generation.add_endpoints(archive)
        archive.add_endpoint(
            SCORE_EXAMPLES,
            self.score_examples,
            [tf.TensorSpec([None], tf.string, name=SERIALIZED_EXAMPLES_INPUT)],
        )

    def add_network_endpoints(self, archive) -> None:
        """`logits_from_ids` and `generate_ids`."""
        super().add_network_endpoints(archive)
        archive.add_endpoint(
            GENERATE_IDS, self.generate_token_ids, GENERATE_IDS_INPUTS
        )

    def write_network_files(self, network_dir: str) -> None:
        """The tokenizer files, for the TFLite generation runner."""
        tokenizer_dir = network_tokenizer_dir(network_dir)
        tf.io.gfile.makedirs(tokenizer_dir)
        for asset, filename in (
            (VOCAB_ASSET, VOCAB_FILENAME),
            (MERGES_ASSET, MERGES_FILENAME),
        ):
            tf.io.gfile.copy(
                self.tft_output.vocabulary_file_by_name(asset),
                os.path.join(tokenizer_dir, filename),
                overwrite=True,
            )

    def token_ids_specs(self) -> list[tf.TensorSpec]:
        """The input of `logits_from_ids`: one window of token ids."""
        return [
            tf.TensorSpec(
                [1, self.sequence_length], tf.int32, name=TOKEN_IDS_FEATURE
            )
        ]

    def logits_from_ids(self, token_ids: tf.Tensor) -> dict:
        logits = self.model(
            {
                TOKEN_IDS_FEATURE: token_ids,
                PADDING_MASK_FEATURE: tf.ones_like(token_ids, tf.bool),
            }
        )
        return {"logits": tf.cast(logits, tf.float32)}


def export_causal_lm(
    model: keras_hub.models.CausalLM,
    tft_output: tft.TFTransformOutput,
    export_dir: str,
    network_dir: str,
    sequence_length: int,
    eos_id: int,
    serving_class: type[CausalLMServing] | None = None,
) -> None:
    """Writes `serving_class`'s serving SavedModel to `export_dir` and its
    bare network to `network_dir` (`Exporter.export`).

    Args:
        serving_class: `CausalLMServing` (None) or a subclass that adds
            signatures; the other arguments are its constructor's.
    """
    serving_class = serving_class or CausalLMServing
    serving = serving_class(model, tft_output, sequence_length, eos_id)
    serving.export(export_dir, network_dir)
