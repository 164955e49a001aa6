"""Decoding an encoder-decoder (keras-hub's `BartSeq2SeqLM`) with the
causal LMs' loops.

The encoder reads each source once. Its output, its padding mask and the
decoder's cross-attention keys and values travel in the decoding cache
beside the self-attention keys and values, so the loops of
`sample_search` and `beam_search` (which repeat and gather cache rows
for beams) decode an encoder-decoder unchanged: `EncoderDecoderSteps` is
the `decode_ops.CachedDecoder` they call. The decoder starts every row
from one start token.

The decoder steps are keras-hub's own `call_decoder_with_cache`, whose
caches are one stacked tensor per kind that every step re-stacks; the
per-layer caches `decode_ops.forward` keeps for GPT-2 would save that copy
(not done here: the translation models are small).
"""

from __future__ import annotations

import tensorflow as tf

from textmill.serving.sampling import decode_ops
from textmill.serving.sampling.beam_search import beam_search
from textmill.serving.sampling.causal_lm_generator import (
    LENGTH_MULTIPLE,
    _output,
    _round_up,
)
from textmill.serving.sampling.generation_output import GenerationOutput
from textmill.serving.sampling.sample_search import sample_search


class EncoderDecoderSteps(decode_ops.CachedDecoder):
    """Cached decoder steps of one batch of sources.

    The cache is `(encoder_output [batch, source_length, hidden],
    encoder_padding_mask [batch, source_length], self_attention [batch,
    layers, 2, total_length, heads, head_dim], cross_attention [batch,
    layers, 2, source_length, heads, head_dim])`, keras-hub's layout for
    `call_decoder_with_cache`.

    Args:
        model: a keras-hub `BartSeq2SeqLM`.
        source_ids: int32 `[batch, source_length]`, right-padded.
        source_mask: bool `[batch, source_length]`, True at source tokens.
    """

    def __init__(self, model, source_ids, source_mask):
        self.model = model
        self.source_mask = tf.cast(source_mask, tf.int32)
        self.encoder_output = model.call_encoder(source_ids, self.source_mask)

    def _empty(self, batch, length) -> tf.Tensor:
        backbone = self.model.backbone
        shape = [
            batch,
            backbone.num_layers,
            2,
            length,
            backbone.num_heads,
            backbone.hidden_dim // backbone.num_heads,
        ]
        return tf.zeros(shape, self.model.compute_dtype)

    def prefill(self, prompt_ids, total_length, logits_at) -> tuple:
        batch = tf.shape(prompt_ids)[0]
        logits, hidden, self_cache, cross_cache = (
            self.model.call_decoder_with_cache(
                encoder_hidden_states=self.encoder_output,
                encoder_padding_mask=self.source_mask,
                decoder_token_ids=prompt_ids,
                self_attention_cache=self._empty(batch, total_length),
                self_attention_cache_update_index=0,
                cross_attention_cache=self._empty(
                    batch, tf.shape(self.encoder_output)[1]
                ),
                cross_attention_cache_update_index=0,
            )
        )
        cache = (self.encoder_output, self.source_mask, self_cache, cross_cache)
        logits = tf.gather(logits, logits_at, axis=1)  # [batch, vocab]
        return tf.cast(logits, tf.float32), tf.cast(hidden, tf.float32), cache

    def decode_step(self, token_ids, cache, index) -> tuple:
        encoder_output, source_mask, self_cache, cross_cache = cache
        logits, hidden, self_cache, _ = self.model.call_decoder_with_cache(
            encoder_hidden_states=encoder_output,
            encoder_padding_mask=source_mask,
            decoder_token_ids=token_ids[:, tf.newaxis],
            self_attention_cache=self_cache,
            self_attention_cache_update_index=index,
            cross_attention_cache=cross_cache,
            cross_attention_cache_update_index=None,
        )
        cache = (encoder_output, source_mask, self_cache, cross_cache)
        # [rows, 1, ...] -> [rows, ...]
        return (
            tf.cast(logits[:, 0], tf.float32),
            tf.cast(hidden[:, 0], tf.float32),
            cache,
        )


class Seq2SeqGenerator:
    """Greedy decoding, sampling and beam search of an encoder-decoder,
    with the tensor API of `CausalLMGenerator` (so `GenerationSignatures`
    serves it): the "prompts" are the right-padded source ids, and the
    returned token ids are the decoder's, from its start token.

    Args:
        model: a keras-hub `BartSeq2SeqLM`.
        start_token_id: the decoder's first token.
        max_length: the most decoder positions (start token included).

    Example:

    >>> generator = Seq2SeqGenerator(model, start_token_id=0, max_length=64)
    >>> out = generator.greedy(source_ids, source_lengths, 16, stop_id)
    """

    def __init__(self, model, start_token_id: int, max_length: int):
        self.model = model
        self.start_token_id = start_token_id
        self.max_length = max_length

    def _decoding(self, source_ids, source_lengths, max_new_tokens):
        """The bound steps, the start prompts and the total length."""
        source_ids = tf.cast(source_ids, tf.int32)
        mask = tf.sequence_mask(source_lengths, tf.shape(source_ids)[1])
        steps = EncoderDecoderSteps(self.model, source_ids, mask)
        batch = tf.shape(source_ids)[0]
        prompt = tf.fill([batch, 1], tf.constant(self.start_token_id, tf.int32))
        lengths = tf.ones([batch], tf.int32)
        total = tf.minimum(
            _round_up(1 + max_new_tokens, LENGTH_MULTIPLE), self.max_length
        )
        return steps, prompt, lengths, total

    def greedy(
        self, prompt_ids, prompt_lengths, max_new_tokens, stop_token_id
    ) -> GenerationOutput:
        """Greedy decoding of right-padded sources `prompt_ids` [batch,
        width] of `prompt_lengths` tokens (see `CausalLMGenerator`)."""
        return self.sample(
            prompt_ids,
            prompt_lengths,
            max_new_tokens,
            stop_token_id,
            sample=False,
        )

    def sample(
        self,
        prompt_ids,
        prompt_lengths,
        max_new_tokens,
        stop_token_id,
        temperature=None,
        top_k=None,
        top_p=None,
        seed=None,
        sample: bool = True,
    ) -> GenerationOutput:
        """Sampling with temperature, top-k and top-p (as
        `CausalLMGenerator.sample`)."""
        steps, prompt, lengths, total = self._decoding(
            prompt_ids, prompt_lengths, max_new_tokens
        )
        if sample:
            seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
        token_ids, scores, ends = sample_search(
            steps,
            prompt,
            lengths,
            total,
            max_new_tokens,
            stop_token_id,
            sample=sample,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )
        return _output(token_ids, scores, lengths, ends)

    def beam(
        self,
        prompt_ids,
        prompt_lengths,
        max_new_tokens,
        stop_token_id,
        num_beams,
    ) -> GenerationOutput:
        """Beam search; every field has a beam axis, best beam first."""
        steps, prompt, lengths, total = self._decoding(
            prompt_ids, prompt_lengths, max_new_tokens
        )
        token_ids, scores, ends, _ = beam_search(
            steps,
            prompt,
            lengths,
            total,
            max_new_tokens,
            stop_token_id,
            num_beams,
        )
        return _output(token_ids, scores, lengths[:, None], ends)
