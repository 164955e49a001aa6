"""Cost limits the model server checks before a request reaches a model.

Every limit counts work the model really does: the bytes of each string
input (the tokenizer's and the model's input), the new tokens asked for,
and the rows a decode step runs (batch x beams, batch x contrastive
candidates). A value outside its range is refused with a 400 naming the
range; nothing is clipped silently. Checked while the request is decoded,
so the exported graphs stay as they are.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from textmill.serving.serving_error import ServingError

MAX_NEW_TOKENS = "max_new_tokens"
NUM_BEAMS = "num_beams"
TOP_K = "top_k"
PENALTY_ALPHA = "penalty_alpha"


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """The ranges a request's inputs must fall in.

    Args:
        max_string_bytes: the most UTF-8 bytes in one string of any input
            (a prompt, a text to score).
        max_new_tokens: `max_new_tokens` must be in `[1, max_new_tokens]`.
        max_num_beams: `num_beams` must be in `[1, max_num_beams]`.
        max_top_k: `top_k` must be in `[0, max_top_k]` (`[1, ...]` for
            contrastive search, whose signature takes `penalty_alpha`).
        max_decode_rows: the most rows one decode step runs: batch x
            `num_beams` for beam search, batch x `top_k` for contrastive
            search, the batch otherwise.

    Example:

    >>> RequestLimits(max_new_tokens=64).check({"max_new_tokens": 65})
    Traceback (most recent call last):
    ServingError: HTTP 400: max_new_tokens is 65; the server takes ...
    """

    max_string_bytes: int = 16384
    max_new_tokens: int = 256
    max_num_beams: int = 8
    max_top_k: int = 100
    max_decode_rows: int = 64

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if getattr(self, field.name) < 1:
                raise ValueError(
                    f"RequestLimits.{field.name} is "
                    f"{getattr(self, field.name)}; pass a positive number."
                )

    def check(self, inputs: dict[str, np.ndarray]) -> None:
        """Refuses inputs that are out of range or cost too much.

        Args:
            inputs: decoded input name -> array (see `rest_codec`).

        Raises:
            ServingError: 400 naming the input, its value and the range.
        """
        for name, array in inputs.items():
            if array.dtype == object and array.size:
                longest = max(len(item) for item in array.flat)
                if longest > self.max_string_bytes:
                    raise ServingError(
                        400,
                        f"input '{name}' has a string of {longest} bytes; "
                        f"the server takes at most {self.max_string_bytes} "
                        "bytes per string (--max-string-bytes).",
                    )
        batch = max(
            (
                a.shape[0]
                for a in inputs.values()
                if a.dtype == object and a.ndim
            ),
            default=1,
        )
        rows = batch
        if MAX_NEW_TOKENS in inputs:
            _in_range(inputs, MAX_NEW_TOKENS, 1, self.max_new_tokens)
        if NUM_BEAMS in inputs:
            beams = _in_range(inputs, NUM_BEAMS, 1, self.max_num_beams)
            rows = batch * beams
        if TOP_K in inputs:
            contrastive = PENALTY_ALPHA in inputs
            top_k = _in_range(inputs, TOP_K, int(contrastive), self.max_top_k)
            if contrastive:
                rows = batch * top_k
        if rows > self.max_decode_rows:
            raise ServingError(
                400,
                f"this request decodes {rows} rows per step (batch {batch} "
                f"x beams or contrastive top_k); the server takes at most "
                f"{self.max_decode_rows} (--max-decode-rows); send fewer "
                "prompts per request.",
            )


def _in_range(inputs: dict, name: str, low: int, high: int) -> int:
    """The scalar integer input `name`, refused outside `[low, high]`."""
    flag = "--max-" + name.removeprefix("max_").replace("_", "-")
    value = inputs[name]
    if value.ndim or value.dtype.kind not in "iu":
        raise ServingError(
            400, f"{name} must be one integer in [{low}, {high}]."
        )
    number = int(value)
    if not low <= number <= high:
        raise ServingError(
            400,
            f"{name} is {number}; the server takes {name} in [{low}, "
            f"{high}] (the upper bound is the server's {flag}).",
        )
    return number
