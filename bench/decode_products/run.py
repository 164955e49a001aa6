"""The matrix products of one greedy decoding step: TensorFlow, XLA, NumPy.

A decoding step of a GPT-2 of DistilGPT2's shape reads every weight
once: per layer the query-key-value, attention-output, inner and outer
projections, then the tied `[vocab, hidden]` output table (324.4 MB in
float32 for 6 layers, hidden 768, vocabulary 50257, biases included).
This benchmark times those products alone, chained the way a step chains
them, for `batch` rows of activations:

- `tensorflow`: TensorFlow's CPU kernels in a `tf.function`, as
  `decode_ops` runs them: each projection one 2-D `MatMul` plus
  `BiasAdd`, the output table as `table @ rows^T` (its default threading);
- `xla`: the same products compiled by XLA (`jit_compile=True`, as HF
  TF + XLA decodes), the output table as `rows @ table^T` (HF's order);
- `numpy`: the same products with NumPy's BLAS (OpenBLAS in the wheel,
  its default threading), for reference: what the machine's memory and
  cores allow.

Every arm loads the same float32 weights, and its last logits must agree
with NumPy's (checked). Attention, layer norms, activations and the loop
are left out on purpose: this is the floor under a decoding step with
each library's kernels, to set beside the whole steps of bench/generate
(whose per-step times, when its results.json is present, are quoted from
that separate run).

Time: see `bench/harness.py` (a warm-up call per arm and batch, then
`--repeats` interleaved calls, medians); each call runs `--steps` steps.

Run: `python bench/decode_products/run.py` (about 2 minutes on 2 cores);
writes `bench/decode_products/results.json` and `results.md` beside this
file.
"""

import argparse
import json
import logging
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import harness  # noqa: E402

ARMS = ("tensorflow", "xla", "numpy")
SHAPE = {"layers": 6, "hidden": 768, "inner": 3072, "vocab": 50257}
INIT_SCALE = 0.2
GENERATE_RESULTS = os.path.join(
    os.path.dirname(HERE), "generate", "results.json"
)

logger = logging.getLogger("bench.decode_products")


def _projection_shapes(hidden: int, inner: int) -> list[tuple[int, int]]:
    """One layer's `[inputs, outputs]` kernels, in step order."""
    return [
        (hidden, 3 * hidden),
        (hidden, hidden),
        (hidden, inner),
        (inner, hidden),
    ]


def _write_weights(path: str, shape: dict) -> int:
    """Random float32 weights into `path` (.npz); returns their bytes."""
    rng = np.random.default_rng(0)
    arrays = {}
    for layer in range(shape["layers"]):
        for i, (n_in, n_out) in enumerate(
            _projection_shapes(shape["hidden"], shape["inner"])
        ):
            arrays[f"kernel_{layer}_{i}"] = rng.normal(
                0, INIT_SCALE / np.sqrt(n_in), (n_in, n_out)
            ).astype(np.float32)
            arrays[f"bias_{layer}_{i}"] = rng.normal(0, 0.02, n_out).astype(
                np.float32
            )
    arrays["table"] = rng.normal(
        0, INIT_SCALE, (shape["vocab"], shape["hidden"])
    ).astype(np.float32)
    np.savez(path, **arrays)
    return sum(a.nbytes for a in arrays.values())


def _load(path: str, shape: dict):
    """`(layers, table)`: per layer a list of `(kernel, bias)`."""
    weights = np.load(path)
    per_layer = len(_projection_shapes(shape["hidden"], shape["inner"]))
    layers = [
        [
            (weights[f"kernel_{layer}_{i}"], weights[f"bias_{layer}_{i}"])
            for i in range(per_layer)
        ]
        for layer in range(shape["layers"])
    ]
    return layers, weights["table"]


def _rows(batch: int, hidden: int) -> np.ndarray:
    return np.random.default_rng(batch).normal(0, 1, (batch, hidden))


def _numpy_cases(path, shape, batches, steps) -> dict:
    layers, table = _load(path, shape)
    hidden = shape["hidden"]

    def step(x):
        for projections in layers:
            for i, (kernel, bias) in enumerate(projections):
                x = x @ kernel + bias
                if i == 0:  # queries, keys, values -> one hidden's width
                    x = x[:, :hidden]
        return x @ table.T

    def make(batch):
        x = _rows(batch, hidden).astype(np.float32)

        def run():
            for _ in range(steps):
                logits = step(x)
            return logits

        return run

    return {f"batch_{b}": make(b) for b in batches}


def _tensorflow_cases(path, shape, batches, steps, xla: bool) -> dict:
    import tensorflow as tf

    layers, table = _load(path, shape)
    layers = [
        [(tf.constant(k), tf.constant(b)) for k, b in projections]
        for projections in layers
    ]
    table = tf.constant(table)
    hidden = shape["hidden"]

    @tf.function(jit_compile=xla)
    def run_steps(x):
        def step(i, logits):
            # Each step reads the last one's logits, as decoding does (and
            # so that no step can be hoisted out of the loop); adding
            # 1e-30 of a logit leaves float32 activations unchanged.
            y = x + 1e-30 * logits[:, :1]
            for projections in layers:
                for j, (kernel, bias) in enumerate(projections):
                    y = tf.nn.bias_add(tf.matmul(y, kernel), bias)
                    if j == 0:
                        y = y[:, :hidden]
            if xla:
                return i + 1, tf.matmul(y, table, transpose_b=True)
            # A step's few rows take `table @ rows^T` (see decode_ops).
            return i + 1, tf.transpose(tf.matmul(table, y, transpose_b=True))

        logits = tf.zeros([tf.shape(x)[0], table.shape[0]])
        _, logits = tf.while_loop(
            lambda i, _: i < steps, step, (tf.constant(0), logits)
        )
        return logits

    def make(batch):
        x = tf.constant(_rows(batch, hidden).astype(np.float32))
        return lambda: run_steps(x).numpy()

    return {f"batch_{b}": make(b) for b in batches}


def _serve(arm: str, path: str, shape: dict, batches, steps) -> None:
    if arm == "numpy":
        cases = _numpy_cases(path, shape, batches, steps)
    else:
        cases = _tensorflow_cases(path, shape, batches, steps, arm == "xla")
    harness.serve(
        cases,
        output=lambda logits: {
            "logits_head": np.asarray(logits)[:, :64].tolist()
        },
    )


def _check(outputs: dict) -> float:
    """The largest relative difference of an arm's logits from NumPy's;
    raises when one disagrees beyond float32 rounding."""
    reference = np.array(outputs["numpy"]["logits_head"])
    scale = np.max(np.abs(reference))
    worst = 0.0
    for arm, output in outputs.items():
        difference = float(
            np.max(np.abs(np.array(output["logits_head"]) - reference)) / scale
        )
        if difference > 1e-4:
            raise RuntimeError(
                f"{arm}'s logits differ from NumPy's by {difference:.2e} of "
                "their scale: the arms did not compute the same products."
            )
        worst = max(worst, difference)
    return worst


def _generate_quote(batches: list[int]) -> dict:
    """Milliseconds per step of bench/generate's best float32 peer and
    `textmill_api`, from its results.json (a separate run), where
    present."""
    if not os.path.exists(GENERATE_RESULTS):
        return {}
    with open(GENERATE_RESULTS) as f:
        generate = json.load(f)
    quote = {"time": generate["machine_before"]["time"], "batches": {}}
    for batch in map(str, batches):
        peer = generate["best_float32_peer"].get(batch)
        rates = generate["tokens_per_s"]
        if peer is None or batch not in rates.get("textmill_api", {}):
            continue
        quote["batches"][batch] = {
            "best_float32_peer": peer,
            # tok/s counts the batch's tokens: one step makes `batch`.
            "peer_ms_per_step": 1e3 * int(batch) / rates[peer][batch]["median"],
            "textmill_api_ms_per_step": 1e3
            * int(batch)
            / rates["textmill_api"][batch]["median"],
        }
    return quote


def _markdown(results: dict) -> str:
    bytes_ = results["weight_bytes"]
    lines = [
        "# The matrix products of one greedy step",
        "",
        "Written by `python bench/decode_products/run.py "
        + " ".join(results["argv"])
        + "`.",
        "",
        f"Shape: {json.dumps(results['shape'])}; float32 weights of "
        f"{bytes_ / 1e6:.1f} MB, all read once per step. Each call runs "
        f"{results['steps']} steps of the products alone (no attention, "
        "layer norms or loop logic). Every arm's logits agree with NumPy's to "
        f"{results['max_relative_difference']:.1e} of their scale.",
        "",
        *harness.method_lines(
            results["repeats"],
            1,
            results["machine_before"],
            results["machine_after"],
        ),
        "",
        "| batch | "
        + " | ".join(f"{arm} ms/step" for arm in ARMS)
        + " | tensorflow / xla time | tensorflow / numpy time | "
        + " | ".join(f"{arm} GB/s" for arm in ARMS)
        + " |",
        "|---" * (3 + 2 * len(ARMS)) + "|",
    ]
    for batch, per_arm in results["ms_per_step"].items():
        ours = per_arm["tensorflow"]
        lines.append(
            f"| {batch} | "
            + " | ".join(
                harness.spread_text(per_arm[arm], "{:.2f}") for arm in ARMS
            )
            + f" | {harness.ratio(ours, per_arm['xla']):.2f}"
            + f" | {harness.ratio(ours, per_arm['numpy']):.2f} | "
            + " | ".join(
                f"{bytes_ / per_arm[arm]['median'] / 1e6:.1f}" for arm in ARMS
            )
            + " |"
        )
    quote = results["generate_quote"]
    if quote.get("batches"):
        lines += [
            "",
            "Whole decoding steps from bench/generate/results.json (a "
            f"separate run, started {quote['time']}; median tok/s turned "
            "into ms per step of the batch):",
            "",
            "| batch | best float32 peer | its ms/step | textmill_api "
            "ms/step | tensorflow products alone, this run |",
            "|---|---|---|---|---|",
        ]
        for batch, row in quote["batches"].items():
            products = results["ms_per_step"].get(batch, {}).get("tensorflow")
            lines.append(
                f"| {batch} | {row['best_float32_peer']} "
                f"| {row['peer_ms_per_step']:.1f} "
                f"| {row['textmill_api_ms_per_step']:.1f} | "
                + (f"{products['median']:.1f}" if products else "n/a")
                + " |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=ARMS, help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--layers", type=int, default=SHAPE["layers"], help="for tests"
    )
    parser.add_argument(
        "--vocab", type=int, default=SHAPE["vocab"], help="for tests"
    )
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args()
    if args.serve:
        _serve(
            args.serve,
            args.weights,
            json.loads(args.shape),
            args.batches,
            args.steps,
        )
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    shape = dict(SHAPE, layers=args.layers, vocab=args.vocab)
    before = harness.machine_state()
    repo = os.path.dirname(os.path.dirname(HERE))
    with tempfile.TemporaryDirectory() as work_dir:
        weights = os.path.join(work_dir, "weights.npz")
        weight_bytes = _write_weights(weights, shape)
        arms = []
        try:
            for arm in ARMS:
                command = [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--serve",
                    arm,
                    "--weights",
                    weights,
                    "--shape",
                    json.dumps(shape),
                    "--steps",
                    str(args.steps),
                    "--batches",
                    *map(str, args.batches),
                ]
                env = {"PYTHONPATH": repo, "TF_CPP_MIN_LOG_LEVEL": "2"}
                arms.append(harness.Arm(arm, command, env=env))
            cases = [f"batch_{b}" for b in args.batches]
            runs = harness.interleave(
                arms, cases, args.repeats, log=logger.info
            )
        finally:
            for arm in arms:
                arm.close()
    worst = max(
        _check({arm: runs[arm][case]["output"] for arm in ARMS})
        for case in cases
    )
    results = {
        "argv": sys.argv[1:],
        "shape": shape,
        "weight_bytes": weight_bytes,
        "steps": args.steps,
        "repeats": args.repeats,
        "machine_before": before,
        "machine_after": harness.machine_state(),
        "max_relative_difference": worst,
        "ms_per_step": {
            str(b): {
                arm: harness.summary(
                    [
                        1e3 * s / args.steps
                        for s in runs[arm][f"batch_{b}"]["wall_s"]
                    ]
                )
                for arm in ARMS
            }
            for b in args.batches
        },
        "generate_quote": _generate_quote(args.batches),
    }
    markdown = _markdown(results)
    harness.write_results(args.out_dir, results, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
