"""Text generation with a keras-hub causal LM: the Python API."""

from __future__ import annotations

import functools
import weakref

import tensorflow as tf

from textmill.serving.sampling import decode_ops
from textmill.serving.sampling.beam_search import beam_search
from textmill.serving.sampling.contrastive_search import contrastive_search
from textmill.serving.sampling.generation_output import GenerationOutput
from textmill.serving.sampling.sample_search import sample_search
from textmill.serving.sampling.sampler_settings import SamplerSettings

# Compiled shapes are rounded up to these multiples, so that prompts of
# similar lengths share one XLA compilation.
WIDTH_MULTIPLE = 8
LENGTH_MULTIPLE = 32


class CausalLMGenerator:
    """Decoding loops of one causal LM, compiled with XLA on accelerators.

    The tensor methods (`greedy`, `sample`, `beam`, `contrastive`) take
    right-padded prompts and tensor settings, so they work inside a
    `tf.function` or an exported signature; `__call__` takes prompts padded
    on either side and a `SamplerSettings`.

    Prompts are decoded right-padded (see `decode_ops`): each token keeps
    its position in the prompt alone, so a prompt gives the same tokens in
    a batch as on its own, and the model needs no attention mask for
    padding. Greedy decoding and sampling without XLA give each row its
    own position, so a batch takes `max_new_tokens` steps whatever its
    prompt lengths; the other loops move all rows together, and rows whose
    prompt is longer than the shortest one copy their prompt tokens in the
    first steps.

    Args:
        model: a keras-hub GPT-2 family causal LM (`GPT2CausalLM`),
            token ids in, logits out.
        jit_compile: compile the decoding loops with XLA (prefill, cache,
            sampler and loop in one cluster; tokenization stays outside).
            None (the default) compiles when a GPU or TPU is visible and
            not on CPU only: there (2 cores, DistilGPT2's shape) XLA
            decoded greedily 1.08-1.17x as fast at batch 1, but 0.58-0.60x
            at batch 8 and 0.75-0.80x at batch 32.
        max_length: the longest prompt plus continuation; defaults to the
            backbone's `max_sequence_length`.

    Call arguments:
        token_ids: int `[batch, width]` prompts, padded on either side.
        padding_mask: bool `[batch, width]`, True at prompt tokens; each row
            needs at least one (e.g. a begin-of-text token).
        settings: a `SamplerSettings`.

    Example:

    >>> generator = CausalLMGenerator(model)
    >>> out = generator(ids, mask, SamplerSettings("beam", num_beams=4))
    >>> out.token_ids, out.sequence_scores
    """

    def __init__(
        self,
        model,
        jit_compile: bool | None = None,
        max_length: int | None = None,
    ):
        decode_ops.check_cached_model(model)
        self.model = model
        if jit_compile is None:
            jit_compile = _has_accelerator()
        self.jit_compile = jit_compile
        self.max_length = max_length or model.backbone.max_sequence_length
        compile_ = functools.partial(
            tf.function, jit_compile=jit_compile, reduce_retracing=True
        )
        # TensorFlow's own kernels run the loops unless XLA compiles them.
        tf_kernels = not jit_compile
        self._sample_search = compile_(
            functools.partial(sample_search, model, tf_kernels=tf_kernels)
        )
        self._beam_search = compile_(
            functools.partial(beam_search, model, tf_kernels=tf_kernels)
        )
        self._contrastive_search = compile_(
            functools.partial(contrastive_search, model, tf_kernels=tf_kernels)
        )

    def __call__(
        self, token_ids, padding_mask, settings: SamplerSettings
    ) -> GenerationOutput:
        prompt_ids, lengths = right_align(token_ids, padding_mask)
        self._check_prompts(lengths, settings.max_new_tokens)
        common = dict(
            prompt_ids=prompt_ids,
            prompt_lengths=lengths,
            max_new_tokens=tf.constant(settings.max_new_tokens, tf.int32),
            stop_token_id=tf.constant(
                -1
                if settings.stop_token_id is None
                else settings.stop_token_id,
                tf.int32,
            ),
        )
        if settings.strategy == "greedy":
            return self.greedy(**common)
        if settings.strategy == "sample":
            return self.sample(
                **common,
                temperature=tf.constant(settings.temperature, tf.float32),
                top_k=tf.constant(settings.top_k, tf.int32),
                top_p=tf.constant(settings.top_p, tf.float32),
                seed=tf.constant(settings.seed, tf.int64),
            )
        if settings.strategy == "beam":
            out = self.beam(
                **common, num_beams=tf.constant(settings.num_beams, tf.int32)
            )
            if settings.return_all_beams:
                return out
            return GenerationOutput(*(field[:, 0] for field in out))
        return self.contrastive(
            **common,
            top_k=tf.constant(settings.top_k, tf.int32),
            penalty_alpha=tf.constant(settings.penalty_alpha, tf.float32),
        )

    def greedy(
        self, prompt_ids, prompt_lengths, max_new_tokens, stop_token_id
    ) -> GenerationOutput:
        """Greedy decoding.

        Args:
            prompt_ids: int32 `[batch, width]`, right-padded.
            prompt_lengths: int32 `[batch]`, each >= 1.
            max_new_tokens: int32 scalar >= 1.
            stop_token_id: int32 scalar (< 0: never stop).

        Returns:
            A `GenerationOutput`.
        """
        prompt_ids, total = self._shapes(
            prompt_ids, prompt_lengths, max_new_tokens
        )
        token_ids, scores, ends = self._sample_search(
            prompt_ids,
            prompt_lengths,
            total,
            max_new_tokens,
            stop_token_id,
            sample=False,
        )
        return _output(token_ids, scores, prompt_lengths, ends)

    def sample(
        self,
        prompt_ids,
        prompt_lengths,
        max_new_tokens,
        stop_token_id,
        temperature,
        top_k,
        top_p,
        seed,
    ) -> GenerationOutput:
        """Sampling with temperature, top-k and top-p.

        Args:
            prompt_ids, prompt_lengths, max_new_tokens, stop_token_id: as
                `greedy`.
            temperature: float32 scalar >= 0 (0: greedy).
            top_k: int32 scalar >= 0 (0: all tokens).
            top_p: float32 scalar in (0, 1].
            seed: int64 scalar.

        Returns:
            A `GenerationOutput`.
        """
        prompt_ids, total = self._shapes(
            prompt_ids, prompt_lengths, max_new_tokens
        )
        seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
        token_ids, scores, ends = self._sample_search(
            prompt_ids,
            prompt_lengths,
            total,
            max_new_tokens,
            stop_token_id,
            sample=True,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )
        return _output(token_ids, scores, prompt_lengths, ends)

    def beam(
        self,
        prompt_ids,
        prompt_lengths,
        max_new_tokens,
        stop_token_id,
        num_beams,
    ) -> GenerationOutput:
        """Beam search; every field has a beam axis, best beam first.

        Args:
            prompt_ids, prompt_lengths, max_new_tokens, stop_token_id: as
                `greedy`.
            num_beams: int32 scalar >= 1 (a compile-time constant for XLA:
                each value compiles once).

        Returns:
            A `GenerationOutput` with `[batch, num_beams, ...]` fields.
        """
        prompt_ids, total = self._shapes(
            prompt_ids, prompt_lengths, max_new_tokens
        )
        token_ids, scores, ends, _ = self._beam_search(
            prompt_ids,
            prompt_lengths,
            total,
            max_new_tokens,
            stop_token_id,
            num_beams,
        )
        return _output(token_ids, scores, prompt_lengths[:, None], ends)

    def contrastive(
        self,
        prompt_ids,
        prompt_lengths,
        max_new_tokens,
        stop_token_id,
        top_k,
        penalty_alpha,
    ) -> GenerationOutput:
        """Contrastive search.

        Args:
            prompt_ids, prompt_lengths, max_new_tokens, stop_token_id: as
                `greedy`.
            top_k: int32 scalar >= 1, candidates per step (a compile-time
                constant for XLA).
            penalty_alpha: float32 scalar in [0, 1].

        Returns:
            A `GenerationOutput`.
        """
        prompt_ids, total = self._shapes(
            prompt_ids, prompt_lengths, max_new_tokens
        )
        token_ids, scores, ends = self._contrastive_search(
            prompt_ids,
            prompt_lengths,
            total,
            max_new_tokens,
            stop_token_id,
            top_k,
            penalty_alpha,
        )
        return _output(token_ids, scores, prompt_lengths, ends)

    def _shapes(self, prompt_ids, prompt_lengths, max_new_tokens):
        """Crops or pads the prompts to a rounded width; the total length.

        Both are rounded up (never past `max_length`), so that XLA compiles
        once per bucket of prompt widths and continuation lengths.
        """
        width = tf.reduce_max(prompt_lengths)
        total = tf.minimum(
            _round_up(width + max_new_tokens, LENGTH_MULTIPLE),
            self.max_length,
        )
        width = tf.minimum(_round_up(width, WIDTH_MULTIPLE), total)
        prompt_ids = tf.cast(prompt_ids, tf.int32)[:, :width]
        padding = width - tf.shape(prompt_ids)[1]
        prompt_ids = tf.pad(prompt_ids, [[0, 0], [0, padding]])
        return prompt_ids, total

    def _check_prompts(self, lengths: tf.Tensor, max_new_tokens: int):
        if not tf.executing_eagerly():
            return
        lengths = lengths.numpy()
        if lengths.size == 0 or lengths.min() < 1:
            raise ValueError(
                "padding_mask has a row without prompt tokens (or no rows); "
                "give every prompt at least one token, e.g. a begin-of-text "
                "id."
            )
        if lengths.max() + max_new_tokens > self.max_length:
            raise ValueError(
                f"the longest prompt ({lengths.max()} tokens) plus "
                f"max_new_tokens={max_new_tokens} exceeds max_length="
                f"{self.max_length}; shorten the prompt or ask for fewer "
                "tokens."
            )


def right_align(token_ids, padding_mask) -> tuple[tf.Tensor, tf.Tensor]:
    """Moves each row's prompt tokens to its start, keeping their order.

    Args:
        token_ids: int `[batch, width]`.
        padding_mask: bool (or 0/1) `[batch, width]`, True at prompt tokens.

    Returns:
        `(prompt_ids int32 [batch, width], prompt_lengths int32 [batch])`,
        padded with `PAD_ID` on the right.
    """
    token_ids = tf.cast(token_ids, tf.int32)
    mask = tf.cast(padding_mask, tf.bool)
    # A stable sort on "is padding" puts the prompt first, in order.
    order = tf.argsort(tf.cast(tf.logical_not(mask), tf.int32), stable=True)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    aligned = tf.gather(token_ids, order, batch_dims=1)
    inside = tf.range(tf.shape(token_ids)[1]) < lengths[:, None]
    return tf.where(inside, aligned, decode_ops.PAD_ID), lengths


def _has_accelerator() -> bool:
    return bool(
        tf.config.list_logical_devices("GPU")
        or tf.config.list_logical_devices("TPU")
    )


def _round_up(value, multiple: int):
    return (value + multiple - 1) // multiple * multiple


def _output(token_ids, scores, prompt_lengths, ends) -> GenerationOutput:
    positions = tf.range(tf.shape(token_ids)[-1])
    generated = (positions >= prompt_lengths[..., None]) & (
        positions < ends[..., None]
    )
    return GenerationOutput(
        token_ids=token_ids,
        generated_mask=generated,
        token_scores=scores,
        sequence_scores=tf.reduce_sum(scores, axis=-1),
    )


_GENERATORS = weakref.WeakKeyDictionary()


def generate(
    model, token_ids, padding_mask, settings: SamplerSettings
) -> GenerationOutput:
    """Continues prompts with a causal LM (one generator cached per model).

    Args:
        model: a keras-hub GPT-2 family causal LM.
        token_ids: int `[batch, width]` prompts, padded on either side.
        padding_mask: bool `[batch, width]`, True at prompt tokens.
        settings: the strategy and its knobs.

    Returns:
        A `GenerationOutput` (token ids and scores).

    Raises:
        ValueError: a prompt is empty, too long for `max_new_tokens`, or the
            model cannot decode with a cache.
    """
    if model not in _GENERATORS:
        _GENERATORS[model] = CausalLMGenerator(model)
    return _GENERATORS[model](token_ids, padding_mask, settings)
