"""`textmill serve` answering real `:generate` calls under concurrent load.

The server runs as `textmill serve` in its own process on 127.0.0.1 (port
picked by the OS). The served model is a real exported causal LM built
here: a byte-level BPE (512 tokens) learned from this repository's docs, a
randomly initialised keras-hub GPT-2 (2 layers, hidden 64, context 128) and
the `generate` signatures the pipeline exports (`GenerationSignatures`:
tokenize in the graph, greedy decode, detokenize). `--serving-dir DIR
--model NAME` benchmarks a model pushed by `textmill run` instead.

For each client count in `--clients` (1, 4, 16), that many threads each
send `--requests` `:generate` calls (`--batch` prompts, `--max-new-tokens`
new tokens) back to back through `ServingClient`, after a warm-up.
Reported: completed requests per second and generated tokens per second
(wall time of the whole load), errors (any exception or non-200), and
latency p50/p99. The server runs with its defaults (`--max-concurrent` is
half the cores), so more clients than slots queue in the server.

Run: `python bench/serving/run.py` (a few minutes on 2 cores); writes
`bench/serving/results.json` and `results.md` beside this file.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time

import numpy as np

from textmill.serving.client import ServingClient
from textmill.serving.serve_process import start_serve
from textmill.serving.serving_error import ServingError

HERE = os.path.dirname(os.path.abspath(__file__))
TINY_MODEL = "tiny_gpt2"
PROMPT = "The server answers"
VOCAB_SIZE = 512
CONTEXT = 128


def _save_tiny_causal_lm(serving_dir: str) -> None:
    """Exports a tiny random GPT-2 with a real BPE, as the pipeline does."""
    import glob

    import keras
    import keras_hub
    import tensorflow as tf

    from textmill.serving.sampling import CausalLMGenerator
    from textmill.serving.sampling.generation_signatures import (
        GenerationSignatures,
    )
    from textmill.tokenization.bpe_files import train_byte_bpe
    from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer

    root = os.path.dirname(os.path.dirname(HERE))
    texts = []
    for path in sorted(glob.glob(os.path.join(root, "docs", "*.md"))):
        with open(path, encoding="utf-8") as handle:
            texts.extend(p for p in handle.read().split("\n\n") if p)
    files = train_byte_bpe(texts, VOCAB_SIZE, os.path.join(serving_dir, ".bpe"))
    tokenizer = ByteBPETokenizer(files.vocab_path, files.merges_path)
    eos = files.token_id("<|endoftext|>")
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=files.vocab_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=64,
        intermediate_dim=128,
        dropout=0.0,
        max_sequence_length=CONTEXT,
    )
    model = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)

    def prompt_ids(prompt, max_new_tokens):
        ids = tf.cast(tokenizer.tokenize(prompt), tf.int32)
        keep = CONTEXT - 1 - max_new_tokens
        lengths = ids.row_lengths()
        start = lengths - tf.cast(keep, lengths.dtype)
        ids = tf.ragged.boolean_mask(
            ids, tf.ragged.range(lengths) >= start[:, None]
        )
        bos = tf.fill([ids.nrows(), 1], eos)
        return tf.concat([bos, ids], axis=1)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(tokenizer)
    GenerationSignatures(
        CausalLMGenerator(model, max_length=CONTEXT),
        prompt_ids,
        tokenizer.detokenize,
        stop_token_id=eos,
        vocabulary_size=files.vocab_size(),
    ).add_endpoints(archive)
    archive.write_out(os.path.join(serving_dir, TINY_MODEL, "1"), verbose=False)


def _load(call, threads: int, requests: int) -> dict:
    """`threads` threads x `requests` calls of `call` -> rates, errors,
    503 refusals and latency percentiles of the answered calls."""
    latencies: list[float] = []
    errors: list[str] = []
    refused = [0]
    lock = threading.Lock()

    def worker():
        for _ in range(requests):
            start = time.perf_counter()
            try:
                call()
                error = None
            except ServingError as e:
                error = None if e.status == 503 else str(e)
                busy = e.status == 503
            except Exception as e:  # every other failure is an error
                error, busy = f"{type(e).__name__}: {e}", False
            else:
                busy = False
            elapsed = time.perf_counter() - start
            with lock:
                if busy:
                    refused[0] += 1
                elif error:
                    errors.append(error)
                else:
                    latencies.append(elapsed)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - start
    p50, p90, p99 = np.percentile(
        np.array(latencies or [float("nan")]) * 1000, [50, 90, 99]
    )
    return {
        "requests": threads * requests,
        "answered": len(latencies),
        "refused_503": refused[0],
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(float(p50), 2),
        "p90_ms": round(float(p90), 2),
        "p99_ms": round(float(p99), 2),
    }


def _write_markdown(results: dict, path: str) -> None:
    config = results["config"]
    machine = results["machine"]
    lines = [
        "# `textmill serve`: real `:generate` calls under load (localhost)",
        "",
        f"`textmill serve` (defaults) in its own process; model "
        f"`{config['model']}`; each client sends {config['requests']} "
        f"`:generate` requests of {config['batch']} prompt(s), "
        f"max_new_tokens {config['max_new_tokens']} (greedy), back to back, "
        f"after {config['warmup']} warm-up requests. Client: "
        "`ServingClient` (one connection per request). Latencies and "
        "rates count answered requests; `503 busy` are requests the "
        "server's admission control refused at once (all model slots "
        "busy and its queue full), which is its designed answer to "
        "overload, not a failure.",
        f"Machine: {machine['cpus']} CPUs, {machine['platform']}, Python "
        f"{machine['python']}; 1-minute load average at the end "
        f"{machine['load_average_1min_at_end']} (a shared machine: other "
        "work competes for the CPUs).",
        "",
        "| clients | requests | answered | 503 busy | errors | answered/s "
        "| asked new tokens/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for clients, r in results["clients"].items():
        lines.append(
            f"| {clients} | {r['requests']} | {r['answered']} | "
            f"{r['refused_503']} | {r['errors']} | "
            f"{r['requests_per_s']} | {r['new_tokens_per_s']} | "
            f"{r['p50_ms']} | {r['p99_ms']} |"
        )
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--serving-dir", help="a pushed serving directory")
    parser.add_argument("--model", help="model name under --serving-dir")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args()
    if bool(args.serving_dir) != bool(args.model):
        parser.error("--serving-dir and --model go together")
    client_counts = [int(c) for c in args.clients.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        serving_dir, model = args.serving_dir, args.model
        if serving_dir is None:
            serving_dir, model = tmp, TINY_MODEL
            _save_tiny_causal_lm(serving_dir)
        process, url = start_serve(serving_dir, args.startup_timeout)
        try:
            client = ServingClient(url, model, timeout=args.startup_timeout)
            prompts = [PROMPT] * args.batch
            new_tokens = []

            def call():
                completions = client.generate(prompts, args.max_new_tokens)
                if len(completions) != len(prompts):
                    raise ValueError(f"{len(completions)} completions")
                new_tokens.append(args.max_new_tokens * len(prompts))

            for _ in range(args.warmup):
                call()
            by_clients = {}
            for clients in client_counts:
                new_tokens.clear()
                result = _load(call, clients, args.requests)
                result["new_tokens_per_s"] = round(
                    sum(new_tokens) / result["wall_s"], 1
                )
                by_clients[str(clients)] = result
                print(clients, json.dumps(result), flush=True)
        finally:
            process.terminate()
            process.wait(60)

    results = {
        "config": {
            "clients": client_counts,
            "requests": args.requests,
            "warmup": args.warmup,
            "batch": args.batch,
            "max_new_tokens": args.max_new_tokens,
            "model": model
            if args.serving_dir
            else (
                f"{TINY_MODEL} (built here: GPT-2, 2 layers, hidden 64, "
                f"{VOCAB_SIZE}-token BPE, context {CONTEXT}, random weights)"
            ),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        },
        "clients": by_clients,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    _write_markdown(results, os.path.join(args.out_dir, "results.md"))
    return 1 if any(r["errors"] for r in by_clients.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
