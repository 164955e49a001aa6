"""`textmill serve` under a bounded concurrent load on localhost.

The server runs as `textmill serve` in its own process on 127.0.0.1 (port
picked by the OS). For each route, `--threads` client threads each send
`--requests` requests back to back through `ServingClient` (standard-library
HTTP, a new connection per request), after a short warm-up:

- `predict`: `POST :predict`, row format, `--batch` examples per request;
- `generate`: `POST :generate`, `--batch` prompts, `--max-new-tokens`.

Reported per route: requests per second (completed requests / wall time of
the whole load), error count (any exception or non-200 answer), and latency
percentiles p50/p90/p99 over all requests.

By default the served model is a tiny SavedModel built here (a 16->32 dense
layer with softmax for `serving_default`; `generate` appends one character
per new token), so the numbers measure the server: HTTP, JSON and dispatch.
`--serving-dir DIR --model NAME` benchmarks a model pushed by `textmill
run` instead (`serving_default` then gets text instances).

Run: `python bench/serving/run.py` (about a minute on 2 cores); writes
`bench/serving/results.json` and `results.md` beside this file.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from textmill.serving.client import ServingClient

HERE = os.path.dirname(os.path.abspath(__file__))
TINY_MODEL = "tiny"
PROMPT = "The river ran"


def _save_tiny_model(serving_dir: str) -> None:
    import tensorflow as tf

    class TinyModel(tf.Module):
        def __init__(self):
            super().__init__()
            rng = np.random.default_rng(0)
            self.w = tf.Variable(rng.normal(size=(16, 32)).astype("float32"))

        @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32)])
        def probabilities(self, x):
            return {"probabilities": tf.nn.softmax(x @ self.w)}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string),
                tf.TensorSpec([], tf.int32),
            ]
        )
        def generate(self, prompt, max_new_tokens):
            tail = tf.strings.reduce_join(tf.fill([max_new_tokens], "."))
            return {"completion": tf.strings.join([prompt, tail])}

    model = TinyModel()
    tf.saved_model.save(
        model,
        os.path.join(serving_dir, TINY_MODEL, "1"),
        signatures={
            "serving_default": model.probabilities,
            "generate": model.generate,
        },
    )


def _start_server(serving_dir: str, timeout: float):
    """`textmill serve` on a free port -> (process, URL)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "textmill.pipelines.cli",
            "serve",
            "--model-dir",
            serving_dir,
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = []
    reader = threading.Thread(
        target=lambda: lines.append(process.stdout.readline()), daemon=True
    )
    reader.start()
    reader.join(timeout)
    match = re.search(r"http://\S+", lines[0]) if lines else None
    if match is None:
        process.kill()
        raise RuntimeError(
            f"textmill serve did not print its URL within {timeout}s: {lines}"
        )
    return process, match.group(0)


def _load(call, threads: int, requests: int) -> dict:
    """`threads` threads x `requests` calls of `call` -> rate, errors,
    latency percentiles."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker():
        for _ in range(requests):
            start = time.perf_counter()
            try:
                call()
                error = None
            except Exception as e:  # every failure counts as an error
                error = f"{type(e).__name__}: {e}"
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if error:
                    errors.append(error)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - start
    p50, p90, p99 = np.percentile(np.array(latencies) * 1000, [50, 90, 99])
    return {
        "requests": len(latencies),
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
    lines = [
        "# Model server under load (localhost)",
        "",
        f"`textmill serve` in its own process; {config['threads']} client "
        f"threads x {config['requests']} requests per route (after "
        f"{config['warmup']} warm-up requests), batch {config['batch']}, "
        f"max_new_tokens {config['max_new_tokens']}, model "
        f"`{config['model']}`. Client: `ServingClient` (urllib, one "
        "connection per request).",
        f"Machine: {results['machine']['cpus']} CPUs, "
        f"{results['machine']['platform']}, Python "
        f"{results['machine']['python']}; 1-minute load average at the end "
        f"{results['machine']['load_average_1min_at_end']} (a shared "
        "machine: other work competes for the CPUs).",
        "",
        "| route | requests | errors | requests/s | p50 ms | p90 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for route, r in results["routes"].items():
        lines.append(
            f"| {route} | {r['requests']} | {r['errors']} | "
            f"{r['requests_per_s']} | {r['p50_ms']} | {r['p90_ms']} | "
            f"{r['p99_ms']} |"
        )
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--serving-dir", help="a pushed serving directory")
    parser.add_argument("--model", help="model name under --serving-dir")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args()
    if bool(args.serving_dir) != bool(args.model):
        parser.error("--serving-dir and --model go together")

    with tempfile.TemporaryDirectory() as tmp:
        serving_dir, model = args.serving_dir, args.model
        if serving_dir is None:
            serving_dir, model = tmp, TINY_MODEL
            _save_tiny_model(serving_dir)
            rows = np.random.default_rng(1).normal(size=(args.batch, 16))
            instances = rows.round(4).tolist()
        else:
            instances = [PROMPT] * args.batch
        process, url = _start_server(serving_dir, args.startup_timeout)
        try:
            client = ServingClient(url, model, timeout=args.startup_timeout)
            calls = {
                "predict": lambda: client.predict(instances),
                "generate": lambda: client.generate(
                    [PROMPT] * args.batch, args.max_new_tokens
                ),
            }
            routes = {}
            for route, call in calls.items():
                for _ in range(args.warmup):
                    call()
                routes[route] = _load(call, args.threads, args.requests)
                print(route, json.dumps(routes[route]), flush=True)
        finally:
            process.terminate()
            process.wait(60)

    results = {
        "config": {
            "threads": args.threads,
            "requests": args.requests,
            "warmup": args.warmup,
            "batch": args.batch,
            "max_new_tokens": args.max_new_tokens,
            "model": model if args.serving_dir else "tiny (built here)",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        },
        "routes": routes,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    _write_markdown(results, os.path.join(args.out_dir, "results.md"))
    return 1 if any(r["errors"] for r in routes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
