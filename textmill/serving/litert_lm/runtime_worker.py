"""Runs prompts through a `.litertlm` bundle in the LiteRT-LM runtime.

Run by path with the LiteRT-LM venv's Python (see `environment`); it
imports nothing of textmill. Reads a JSON request on stdin:

    {"bundle": path, "prompts": [str], "max_new_tokens": int,
     "max_num_tokens": int or null, "num_threads": int or null,
     "top_k": int, "top_p": float, "temperature": float, "seed": int}

and writes one JSON reply on stdout: per prompt the completion `text`
and the runtime's `benchmark` (prefill and decode tokens and tokens/s).
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


def main() -> None:
    request = json.load(sys.stdin)
    litert_lm.set_min_log_severity(litert_lm.LogSeverity.ERROR)
    backend = litert_lm.Backend.CPU(thread_count=request.get("num_threads"))
    sampler = litert_lm.SamplerConfig(
        top_k=request.get("top_k", 1),
        top_p=request.get("top_p", 1.0),
        temperature=request.get("temperature", 1.0),
        seed=request.get("seed", 0),
    )
    replies = []
    with litert_lm.Engine(
        request["bundle"],
        backend,
        max_num_tokens=request.get("max_num_tokens"),
        enable_benchmark=True,
    ) as engine:
        for prompt in request["prompts"]:
            with engine.create_session(
                apply_prompt_template=False,
                sampler_config=sampler,
                max_output_tokens=request["max_new_tokens"],
            ) as session:
                session.run_prefill([prompt])
                text = session.run_decode().texts[0]
                replies.append(
                    {
                        "text": text,
                        "benchmark": _benchmark(session),
                    }
                )
    json.dump({"replies": replies}, sys.stdout)


if __name__ == "__main__":
    main()
