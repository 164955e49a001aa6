"""How to choose the next tokens: one frozen, validated settings object."""

from __future__ import annotations

import dataclasses

STRATEGIES = ("greedy", "sample", "beam", "contrastive")


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
    """Decoding strategy and its knobs.

    Args:
        strategy: "greedy" (most likely token), "sample" (draw from the
            tempered, top-k / top-p filtered distribution), "beam" (beam
            search over the model's log-probabilities) or "contrastive"
            (contrastive search).
        max_new_tokens: the most tokens to add to each prompt (>= 1).
        temperature: "sample" only; divides the logits. 0 means greedy.
        top_k: "sample": keep the `top_k` most likely tokens (0 keeps all).
            "contrastive": the number of candidates scored per step (>= 1).
        top_p: "sample" only; keep the smallest set of most likely tokens
            whose probability reaches `top_p` (nucleus sampling, in (0, 1];
            1 keeps all). Applied after `top_k`.
        seed: "sample" only; an integer. The same seed, prompts and
            settings give the same tokens.
        num_beams: "beam" only; beams kept per prompt (>= 1).
        return_all_beams: "beam" only; return every beam, best first,
            instead of the best one.
        penalty_alpha: "contrastive" only; weight of the degeneration
            penalty in [0, 1] (0 is greedy search).
        stop_token_id: generation of a sequence ends after this token
            (which is kept in the output); None never stops early.

    Example:

    >>> SamplerSettings("sample", max_new_tokens=16, top_p=0.9, seed=7)
    """

    strategy: str = "greedy"
    max_new_tokens: int = 32
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    num_beams: int = 1
    return_all_beams: bool = False
    penalty_alpha: float = 0.6
    stop_token_id: int | None = None

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"strategy={self.strategy!r} is unknown; choose one of "
                f"{', '.join(STRATEGIES)}."
            )
        _check(self.max_new_tokens >= 1, "max_new_tokens", self, ">= 1")
        _check(self.temperature >= 0, "temperature", self, ">= 0")
        minimum_top_k = 1 if self.strategy == "contrastive" else 0
        _check(
            self.top_k >= minimum_top_k,
            "top_k",
            self,
            f">= {minimum_top_k} for strategy {self.strategy!r}",
        )
        _check(0 < self.top_p <= 1, "top_p", self, "in (0, 1]")
        _check(isinstance(self.seed, int), "seed", self, "an integer")
        _check(self.num_beams >= 1, "num_beams", self, ">= 1")
        _check(0 <= self.penalty_alpha <= 1, "penalty_alpha", self, "in [0, 1]")
        _check(
            self.stop_token_id is None or self.stop_token_id >= 0,
            "stop_token_id",
            self,
            "a token id >= 0 or None",
        )


def _check(ok: bool, name: str, settings: SamplerSettings, rule: str):
    if not ok:
        raise ValueError(
            f"SamplerSettings.{name}={getattr(settings, name)!r} is invalid: "
            f"it must be {rule}."
        )
