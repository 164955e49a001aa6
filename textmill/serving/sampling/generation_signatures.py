"""String-in, string-out generation signatures for an exported causal LM.

TF Serving signatures have no optional inputs, so each strategy is its own
signature and takes exactly the inputs it reads; a REST client picks one by
`signature_name` and sends nothing it does not need:

    generate(prompt, max_new_tokens)                        greedy
    generate_sample(prompt, max_new_tokens, temperature, top_k, top_p, seed)
    generate_beam(prompt, max_new_tokens, num_beams)
    generate_contrastive(prompt, max_new_tokens, top_k, penalty_alpha)

Inputs: `prompt` string `[batch]`; scalars `max_new_tokens` int32 (clipped
to `[1, max_length - 1]`; the prompt keeps its last tokens that fit),
`temperature` float32 (0: greedy), `top_k` int32 (sample: 0 keeps all),
`top_p` float32 in (0, 1], `seed` int64, `num_beams` int32,
`penalty_alpha` float32 in [0, 1]. Out-of-range values fail the request
with an InvalidArgument error naming the input.

Outputs (every signature): `completion` string `[batch]` (the new text,
without the stop token), `token_scores` float32 `[batch, max_new_tokens]`
(the model's log-probability of each new token, stop token included, then
0), `sequence_score` float32 `[batch]` (their sum) and `num_new_tokens`
int32 `[batch]`. `generate_beam` describes the best beam with these and
adds `beam_completions` string `[batch, num_beams]` and `beam_scores`
float32 `[batch, num_beams]`, best first.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from textmill.serving.sampling.causal_lm_generator import CausalLMGenerator
from textmill.serving.sampling.generation_output import GenerationOutput
from textmill.serving.signatures import (
    GENERATE,
    GENERATE_BEAM,
    GENERATE_CONTRASTIVE,
    GENERATE_SAMPLE,
)

GENERATE_GREEDY = GENERATE


def _spec(name: str, dtype: tf.DType, shape=()) -> tf.TensorSpec:
    return tf.TensorSpec(shape, dtype, name=name)


_PROMPT = _spec("prompt", tf.string, [None])
_MAX_NEW_TOKENS = _spec("max_new_tokens", tf.int32)
INPUT_SPECS = {
    GENERATE_GREEDY: [_PROMPT, _MAX_NEW_TOKENS],
    GENERATE_SAMPLE: [
        _PROMPT,
        _MAX_NEW_TOKENS,
        _spec("temperature", tf.float32),
        _spec("top_k", tf.int32),
        _spec("top_p", tf.float32),
        _spec("seed", tf.int64),
    ],
    GENERATE_BEAM: [_PROMPT, _MAX_NEW_TOKENS, _spec("num_beams", tf.int32)],
    GENERATE_CONTRASTIVE: [
        _PROMPT,
        _MAX_NEW_TOKENS,
        _spec("top_k", tf.int32),
        _spec("penalty_alpha", tf.float32),
    ],
}


class GenerationSignatures:
    """The functions behind the generation signatures (see module doc).

    Args:
        generator: the model's `CausalLMGenerator`.
        prompt_ids: `(prompt strings [batch], max_new_tokens) -> int32
            RaggedTensor [batch, None]`: tokenizes the prompts, prefixed
            with a begin-of-text token and keeping at most
            `max_length - max_new_tokens` tokens.
        detokenize: int `RaggedTensor [rows, None] -> string [rows]`.
        stop_token_id: generation of a sequence ends after this token.
        vocabulary_size: the model's number of tokens.

    Example:

    >>> signatures = GenerationSignatures(generator, ids_fn, detok, eos, v)
    >>> signatures.add_endpoints(archive)  # a keras.export.ExportArchive
    """

    def __init__(
        self,
        generator: CausalLMGenerator,
        prompt_ids: Callable,
        detokenize: Callable,
        stop_token_id: int,
        vocabulary_size: int,
    ):
        self.generator = generator
        self.prompt_ids = prompt_ids
        self.detokenize = detokenize
        self.stop_token_id = stop_token_id
        self.vocabulary_size = vocabulary_size

    def add_endpoints(self, archive) -> None:
        """Adds the four signatures to a `keras.export.ExportArchive`."""
        functions = {
            GENERATE_GREEDY: self.generate,
            GENERATE_SAMPLE: self.generate_sample,
            GENERATE_BEAM: self.generate_beam,
            GENERATE_CONTRASTIVE: self.generate_contrastive,
        }
        for name, function in functions.items():
            archive.add_endpoint(name, function, INPUT_SPECS[name])

    def generate(self, prompt, max_new_tokens) -> dict:
        """Greedy decoding (the `generate` signature)."""
        prompt_ids, lengths, max_new_tokens = self._prompts(
            prompt, max_new_tokens
        )
        out = self.generator.greedy(
            prompt_ids, lengths, max_new_tokens, self._stop()
        )
        return self._outputs(out, max_new_tokens)

    def generate_sample(
        self, prompt, max_new_tokens, temperature, top_k, top_p, seed
    ) -> dict:
        """Sampling (the `generate_sample` signature)."""
        checks = [
            _check(temperature >= 0, "temperature", "be >= 0", temperature),
            _check(top_k >= 0, "top_k", "be >= 0 (0: every token)", top_k),
            _check(
                (top_p > 0) & (top_p <= 1),
                "top_p",
                "be in (0, 1], e.g. 0.9",
                top_p,
            ),
        ]
        with tf.control_dependencies(checks):
            prompt_ids, lengths, max_new_tokens = self._prompts(
                prompt, max_new_tokens
            )
        out = self.generator.sample(
            prompt_ids,
            lengths,
            max_new_tokens,
            self._stop(),
            temperature,
            top_k,
            top_p,
            seed,
        )
        return self._outputs(out, max_new_tokens)

    def generate_beam(self, prompt, max_new_tokens, num_beams) -> dict:
        """Beam search (the `generate_beam` signature)."""
        check = _check(
            (num_beams >= 1) & (num_beams <= self.vocabulary_size),
            "num_beams",
            f"be in [1, {self.vocabulary_size}], e.g. 4",
            num_beams,
        )
        with tf.control_dependencies([check]):
            prompt_ids, lengths, max_new_tokens = self._prompts(
                prompt, max_new_tokens
            )
        out = self.generator.beam(
            prompt_ids, lengths, max_new_tokens, self._stop(), num_beams
        )
        batch = tf.shape(out.token_ids)[0]
        # [batch, beams, length] -> [batch * beams, length]
        rows = GenerationOutput(
            *(
                tf.reshape(field, tf.concat([[-1], tf.shape(field)[2:]], 0))
                for field in out
            )
        )
        outputs = self._outputs(rows, max_new_tokens)
        # [batch * beams, ...] -> [batch, beams, ...]
        per_beam = {
            name: tf.reshape(
                value, tf.concat([[batch, -1], tf.shape(value)[1:]], 0)
            )
            for name, value in outputs.items()
        }
        best = {name: value[:, 0] for name, value in per_beam.items()}
        best["beam_completions"] = per_beam["completion"]
        best["beam_scores"] = per_beam["sequence_score"]
        return best

    def generate_contrastive(
        self, prompt, max_new_tokens, top_k, penalty_alpha
    ) -> dict:
        """Contrastive search (the `generate_contrastive` signature)."""
        checks = [
            _check(
                (top_k >= 1) & (top_k <= self.vocabulary_size),
                "top_k",
                f"be in [1, {self.vocabulary_size}], e.g. 4",
                top_k,
            ),
            _check(
                (penalty_alpha >= 0) & (penalty_alpha <= 1),
                "penalty_alpha",
                "be in [0, 1], e.g. 0.6",
                penalty_alpha,
            ),
        ]
        with tf.control_dependencies(checks):
            prompt_ids, lengths, max_new_tokens = self._prompts(
                prompt, max_new_tokens
            )
        out = self.generator.contrastive(
            prompt_ids,
            lengths,
            max_new_tokens,
            self._stop(),
            top_k,
            penalty_alpha,
        )
        return self._outputs(out, max_new_tokens)

    def _stop(self) -> tf.Tensor:
        return tf.constant(self.stop_token_id, tf.int32)

    def _prompts(self, prompt, max_new_tokens):
        max_new_tokens = tf.clip_by_value(
            max_new_tokens, 1, self.generator.max_length - 1
        )
        ids = self.prompt_ids(prompt, max_new_tokens)
        prompt_ids = tf.cast(ids.to_tensor(0), tf.int32)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        return prompt_ids, lengths, max_new_tokens

    def _outputs(self, out: GenerationOutput, max_new_tokens) -> dict:
        new_ids = tf.ragged.boolean_mask(out.token_ids, out.generated_mask)
        scores = tf.ragged.boolean_mask(out.token_scores, out.generated_mask)
        text_ids = tf.ragged.boolean_mask(
            new_ids, tf.not_equal(new_ids, self.stop_token_id)
        )
        rows = tf.shape(out.token_ids)[0]
        return {
            "completion": self.detokenize(text_ids),
            "token_scores": scores.to_tensor(
                0.0, shape=tf.stack([rows, max_new_tokens])
            ),
            "sequence_score": out.sequence_scores,
            "num_new_tokens": tf.cast(new_ids.row_lengths(), tf.int32),
        }


def _check(condition, name: str, rule: str, value) -> tf.Operation:
    """Fails the request (InvalidArgument) unless `condition` holds."""
    return tf.debugging.Assert(
        condition, [f"input {name} must {rule}; got", value]
    )
