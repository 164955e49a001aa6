"""Runs a `.litertlm` bundle in the real LiteRT-LM runtime (CPU).

The runtime lives in the LiteRT-LM venv (see `environment`), so each call
starts `runtime_worker.py` there with a JSON request and reads its JSON
reply: one engine load for all the prompts of a call.
"""

from __future__ import annotations

import json
import os
import subprocess

from textmill.serving.litert_lm.environment import require_litert_venv

_WORKER = os.path.join(os.path.dirname(__file__), "runtime_worker.py")
_TIMEOUT_S = 600


def run_litert_lm(
    bundle_path: str,
    prompts: list[str],
    max_new_tokens: int,
    max_num_tokens: int | None = None,
    num_threads: int | None = None,
    top_k: int = 1,
    top_p: float = 1.0,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[dict]:
    """Completes `prompts` with the LiteRT-LM runtime on CPU.

    Each prompt runs in a new session without a prompt template: the
    runtime puts the bundle's start token before it, prefills, and decodes
    until a stop token or `max_new_tokens`. The defaults sample greedily.

    Args:
        bundle_path: a local `.litertlm` file.
        prompts: raw prompt strings.
        max_new_tokens: the most tokens to add to each prompt.
        max_num_tokens: the engine's token budget (None: the bundle's).
        num_threads: CPU threads (None: the runtime's default).
        top_k: sampler k (1: greedy).
        top_p: sampler p.
        temperature: sampler temperature.
        seed: sampler seed.

    Returns:
        Per prompt `{"text", "benchmark"}`: the completion (without the
        stop token) and the runtime's benchmark (`prefill_tokens`,
        `prefill_tokens_per_s`, `decode_tokens`, `decode_tokens_per_s`,
        `time_to_first_token_s`, `init_s`).

    Raises:
        FileNotFoundError: the bundle or the LiteRT-LM venv is missing.
        RuntimeError: the runtime failed (its stderr is in the message).
    """
    if not os.path.isfile(bundle_path):
        raise FileNotFoundError(
            f"bundle_path={bundle_path!r} does not exist; pass a .litertlm "
            "file (TFLiteExport writes model_<variant>.litertlm)."
        )
    python = os.path.join(require_litert_venv(), "bin", "python")
    request = {
        "bundle": os.path.abspath(bundle_path),
        "prompts": list(prompts),
        "max_new_tokens": int(max_new_tokens),
        "max_num_tokens": max_num_tokens,
        "num_threads": num_threads,
        "top_k": top_k,
        "top_p": top_p,
        "temperature": temperature,
        "seed": seed,
    }
    done = subprocess.run(
        [python, _WORKER],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"the LiteRT-LM runtime failed on {bundle_path!r} (exit "
            f"{done.returncode}):\n{done.stderr[-4000:]}"
        )
    return json.loads(done.stdout)["replies"]
