"""Runs prompts through a `.litertlm` bundle in the LiteRT-LM runtime.

Run by path with the LiteRT-LM venv's Python (see `environment`); it
imports nothing of textmill. Reads a JSON request on stdin:

    {"bundle": path, "prompts": [str], "max_new_tokens": int,
     "max_num_tokens": int or null, "num_threads": int or null,
     "top_k": int, "top_p": float, "temperature": float, "seed": int}

and writes one JSON reply on stdout: per prompt the completion `text`
and the runtime's `benchmark` (prefill and decode tokens and tokens/s).
`open_engine`, `sampler_config` and `complete` serve callers that keep
one engine for many calls (bench/generate).
"""

import json
import sys

import litert_lm


def _benchmark(session) -> dict:
    info = session.get_benchmark_info()
    return {
        "init_s": info.init_time_in_second,
        "time_to_first_token_s": info.time_to_first_token_in_second,
        "prefill_tokens": info.last_prefill_token_count,
        "prefill_tokens_per_s": info.last_prefill_tokens_per_second,
        "decode_tokens": info.last_decode_token_count,
        "decode_tokens_per_s": info.last_decode_tokens_per_second,
    }


def open_engine(
    bundle: str, max_num_tokens: int | None, num_threads: int | None
):
    """A CPU engine on `bundle` with the runtime's benchmark on (use it
    as a context manager)."""
    litert_lm.set_min_log_severity(litert_lm.LogSeverity.ERROR)
    return litert_lm.Engine(
        bundle,
        litert_lm.Backend.CPU(thread_count=num_threads),
        max_num_tokens=max_num_tokens,
        enable_benchmark=True,
    )


def complete(engine, prompt: str, max_new_tokens: int, sampler) -> dict:
    """`{"text", "benchmark"}` of one prompt in a new session."""
    with engine.create_session(
        apply_prompt_template=False,
        sampler_config=sampler,
        max_output_tokens=max_new_tokens,
    ) as session:
        session.run_prefill([prompt])
        text = session.run_decode().texts[0]
        return {"text": text, "benchmark": _benchmark(session)}


def sampler_config(
    top_k: int = 1, top_p: float = 1.0, temperature: float = 1.0, seed: int = 0
):
    """The runtime's sampler settings (the defaults: greedy)."""
    return litert_lm.SamplerConfig(
        top_k=top_k, top_p=top_p, temperature=temperature, seed=seed
    )


def main() -> None:
    request = json.load(sys.stdin)
    sampler = sampler_config(
        request.get("top_k", 1),
        request.get("top_p", 1.0),
        request.get("temperature", 1.0),
        request.get("seed", 0),
    )
    with open_engine(
        request["bundle"],
        request.get("max_num_tokens"),
        request.get("num_threads"),
    ) as engine:
        replies = [
            complete(engine, prompt, request["max_new_tokens"], sampler)
            for prompt in request["prompts"]
        ]
    json.dump({"replies": replies}, sys.stdout)


if __name__ == "__main__":
    main()
