"""Serving a causal LM fine-tuned to summarise ("TL;DR:" prompts).

The SavedModel has every signature of `causal_lm_export`, and

    summarize(document: string[batch], max_new_tokens: int32[]) ->
        as `generate`: the greedy summary of each document in `completion`.

`summarize` builds the prompt exactly as Transform built the training
prefix (`transform.summarization`): end-of-text, the document's first
tokens that leave room for the separator and `max_new_tokens`, then the
"\\nTL;DR:" separator. `generate` with the prompt
`summarization_prompt(document)` gives the same summary whenever the
document fits; `summarize` also cuts a long document where training cut it,
at its end.

The summarization Transform graph reads (document, summary) pairs, so
serving tokenizes with the same in-graph tokenizer over the same
vocabulary files instead of calling that graph.
"""

from __future__ import annotations

import tensorflow as tf

from textmill.families.distilgpt2.export import CausalLMServing
from textmill.families.summarization.transform import (
    PROMPT_SEPARATOR,
    first_tokens,
)
from textmill.features import DOCUMENT_FEATURE
from textmill.serving.sampling.generation_signatures import (
    GenerationSignatures,
)
from textmill.serving.signatures import SUMMARIZE

SUMMARIZE_INPUTS = [
    tf.TensorSpec([None], tf.string, name=DOCUMENT_FEATURE),
    tf.TensorSpec([], tf.int32, name="max_new_tokens"),
]


class SummarizationServing(CausalLMServing):
    """`CausalLMServing` plus the `summarize` signature (module doc)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.summaries = GenerationSignatures(
            self.generation.generator,
            self.summary_prompt_ids,
            self.tokenizer.detokenize,
            stop_token_id=self.eos_id,
            vocabulary_size=self.generation.vocabulary_size,
        )

    def token_ids(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Raw strings [batch] -> ragged int32 ids, by the Transform
        graph's tokenizer."""
        return tf.cast(self.tokenizer.tokenize(text), tf.int32)

    def summary_prompt_ids(self, document, max_new_tokens) -> tf.RaggedTensor:
        """End-of-text, the document's first tokens, then the separator."""
        document_ids = self.token_ids(tf.strings.strip(document))
        rows = document_ids.nrows()
        separator_ids = self.token_ids(tf.fill([rows], PROMPT_SEPARATOR))
        room = (
            self.sequence_length
            - 1
            - max_new_tokens
            - tf.cast(separator_ids.row_lengths(), tf.int32)
        )
        document_ids = first_tokens(
            document_ids, tf.cast(tf.maximum(room, 0), tf.int64)
        )
        bos = tf.fill([rows, 1], tf.constant(self.eos_id, tf.int32))
        return tf.concat([bos, document_ids, separator_ids], axis=1)

    def summarize(self, document, max_new_tokens) -> dict:
        """Greedy summaries of raw documents (the `summarize` signature)."""
        return self.summaries.generate(document, max_new_tokens)

    def add_serving_endpoints(self, archive) -> None:
        super().add_serving_endpoints(archive)
        archive.add_endpoint(SUMMARIZE, self.summarize, SUMMARIZE_INPUTS)
