"""Longformer forward+backward: textmill vs Hugging Face TF vs full attention.

For each sequence length, models of the same size run one training step's
forward and backward pass (gradients of a scalar loss with respect to every
trainable weight; no optimizer update), each arm in its own process:

- `textmill` / `hf_tf`: `LongformerBackbone` (blocked sliding-window
  attention; loaded from a preset converted from the HF checkpoint below,
  so both hold the same weights) and `transformers.TFLongformerModel`
  (Keras 2, `TF_USE_LEGACY_KERAS=1`), both inside a `tf.function`, no
  global tokens: HF's backward fails inside a `tf.function` when any token
  is global (transformers 4.57: "Incompatible shapes [.., 2w+1+g] vs
  [.., 2w+1]");
- `textmill_global_eager` / `hf_tf_global_eager`: the same two models with
  `<s>` global, run eagerly (no `tf.function`), where HF's backward works;
- `textmill_global`: `textmill` with `<s>` global in a `tf.function` (what
  HF cannot run);
- `full_attention`: keras-hub's `RobertaBackbone` of the same size with
  ordinary quadratic attention, in a `tf.function`.

Config (reduced so it runs on a 2-core CPU; documented in results.md):
2 layers, hidden 768, 12 heads, intermediate 3072, attention window 512,
vocabulary 50265, batch 1, dropout 0, float32, TF backend, no XLA.

Time: see `bench/harness.py` (fresh worker processes per length; one
warm-up step per arm, then `--repeats` interleaved steps; medians, wall
and process CPU time).
Peak memory: the process's peak resident set size from just before the
warm-up step to the end (Linux `VmHWM`, reset through
`/proc/self/clear_refs` after the step function is traced), minus its
resident size at the reset: model weights, the runtime and tracing are
excluded; what the steps allocate (activations, gradients, workspaces)
counts.

Run: `python bench/longformer/run.py` (about 15 minutes on 2 cores);
writes `bench/longformer/results.json` and `results.md` beside this file.
"""

import argparse
import logging
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import harness  # noqa: E402

IMPLEMENTATIONS = (
    "textmill",
    "hf_tf",
    "textmill_global_eager",
    "hf_tf_global_eager",
    "textmill_global",
    "full_attention",
)
CONFIG = {
    "num_layers": 2,
    "hidden_dim": 768,
    "num_heads": 12,
    "intermediate_dim": 3072,
    "attention_window": 512,
    "vocabulary_size": 50265,
    "max_sequence_length": 4096,
    "batch_size": 1,
}

logger = logging.getLogger("bench.longformer")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} line")


def _serve(step, eager: bool) -> None:
    """Traces `step`, resets the peak-memory mark, serves the step.

    Each answer carries the peak memory so far (the warm-up step's
    included) above the resident size at the reset.
    """
    if not eager:
        step.get_concrete_function()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident size
    before_kb = _status_kb("VmRSS")

    def run():
        step()
        return None

    def output(_):
        return {"peak_mb": (_status_kb("VmHWM") - before_kb) / 1024}

    harness.serve({"step": run}, output=output)


def _inputs(length: int):
    import numpy as np

    rng = np.random.default_rng(0)
    token_ids = rng.integers(3, CONFIG["vocabulary_size"], (1, length))
    token_ids[:, 0] = 0
    return token_ids.astype("int32")


def _worker(implementation: str, length: int, model_dir: str):
    """Measures one implementation at one length (in this process)."""
    if implementation.startswith("hf_tf"):
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf

    token_ids = tf.constant(_inputs(length))
    if implementation.startswith("hf_tf"):
        from transformers import TFLongformerModel

        model = TFLongformerModel.from_pretrained(model_dir)
        extra = {}
        if "global" in implementation:
            extra["global_attention_mask"] = tf.one_hot(
                [0], length, dtype="int32"
            )

        def forward():
            return model(token_ids, training=True, **extra).last_hidden_state

    elif implementation.startswith("textmill"):
        from textmill.trainer.models.longformer import LongformerBackbone

        model = LongformerBackbone.from_preset(model_dir)
        padding_mask = tf.ones_like(token_ids)
        if "global" in implementation:
            # (1, length): 2 = global for <s>, 1 = local elsewhere.
            padding_mask += tf.one_hot([0], length, dtype="int32")
        inputs = {"token_ids": token_ids, "padding_mask": padding_mask}

        def forward():
            return model(inputs, training=True)

    else:
        import keras_hub

        model = keras_hub.models.RobertaBackbone(
            vocabulary_size=CONFIG["vocabulary_size"],
            num_layers=CONFIG["num_layers"],
            num_heads=CONFIG["num_heads"],
            hidden_dim=CONFIG["hidden_dim"],
            intermediate_dim=CONFIG["intermediate_dim"],
            dropout=0.0,
            max_sequence_length=CONFIG["max_sequence_length"],
        )
        inputs = {
            "token_ids": token_ids,
            "padding_mask": tf.ones_like(token_ids),
        }

        def forward():
            return model(inputs, training=True)

    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.cast(forward(), "float32")))
        return tape.gradient(loss, model.trainable_variables)

    eager = implementation.endswith("_eager")
    _serve(step if eager else tf.function(step), eager)


def _build_checkpoints(work_dir: str) -> tuple[str, str]:
    """A random HF checkpoint and its textmill preset (same weights)."""
    hf_dir = os.path.join(work_dir, "hf")
    script = (
        "import sys\n"
        "from transformers import LongformerConfig, TFLongformerModel\n"
        "c = LongformerConfig(vocab_size={vocabulary_size}, "
        "hidden_size={hidden_dim}, num_hidden_layers={num_layers}, "
        "num_attention_heads={num_heads}, "
        "intermediate_size={intermediate_dim}, "
        "attention_window={attention_window}, "
        "max_position_embeddings={max_sequence_length} + 2, "
        "type_vocab_size=1, hidden_dropout_prob=0.0, "
        "attention_probs_dropout_prob=0.0)\n"
        "m = TFLongformerModel(c)\n"
        "m(m.dummy_inputs)\n"
        "m.save_pretrained(sys.argv[1])\n"
    ).format(**CONFIG)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    subprocess.run([sys.executable, "-c", script, hf_dir], check=True, env=env)
    from textmill.trainer.convert.longformer import convert_longformer

    preset_dir = convert_longformer(hf_dir, os.path.join(work_dir, "preset"))
    return hf_dir, preset_dir


def _markdown(results: dict) -> str:
    wall, cpu, peak = results["wall_s"], results["cpu_s"], results["peak_mb"]
    lengths = results["lengths"]
    pairs = (
        ("textmill", "hf_tf"),
        ("textmill_global_eager", "hf_tf_global_eager"),
    )
    rows = [
        "# Longformer forward+backward benchmark",
        "",
        "Written by `python bench/longformer/run.py "
        + " ".join(results["argv"])
        + "`.",
        "",
        "Config: "
        + ", ".join(f"{k}={v}" for k, v in CONFIG.items())
        + "; dropout 0, float32, TF backend, no XLA, CPU. One step = "
        "forward + backward (gradients of every weight).",
        "",
        "Work per arm: `textmill` and `hf_tf`: no global tokens, in a "
        "`tf.function` (HF TF's backward fails in a `tf.function` when any "
        "token is global); `textmill_global_eager` and "
        "`hf_tf_global_eager`: `<s>` global, eager (HF allows global "
        "tokens there); `textmill_global`: `<s>` global in a "
        "`tf.function`; `full_attention`: keras-hub `RobertaBackbone` of "
        "the same size, quadratic attention, in a `tf.function`.",
        "",
        *harness.method_lines(
            results["repeats"],
            1,
            results["machine_before"],
            results["machine_after"],
        ),
        "Fresh worker processes for each length.",
        "",
        "## Time per step, seconds: wall median (min-max), CPU median",
        "",
        "| tokens | "
        + " | ".join(IMPLEMENTATIONS)
        + " | textmill / hf_tf wall | textmill / hf_tf CPU "
        "| global eager: textmill / hf_tf wall | global eager: CPU |",
        "|---" * (1 + len(IMPLEMENTATIONS) + 4) + "|",
    ]
    for length in lengths:
        case = str(length)
        cells = []
        for name in IMPLEMENTATIONS:
            if case in wall.get(name, {}):
                cells.append(
                    harness.spread_text(wall[name][case], "{:.2f}")
                    + f", {cpu[name][case]['median']:.2f}"
                )
            else:
                cells.append(results["errors"].get(name, {}).get(case, "n/a"))
        for ours, theirs in pairs:
            for table in (wall, cpu):
                a = table.get(ours, {}).get(case)
                b = table.get(theirs, {}).get(case)
                cells.append(f"{harness.ratio(a, b):.2f}" if a and b else "n/a")
        rows.append(f"| {length} | " + " | ".join(cells) + " |")
    rows += [
        "",
        "Ratios below 1: textmill takes less time.",
        "",
        "## Peak memory of the steps, MB",
        "",
        "Peak RSS from the warm-up step on (VmHWM, reset via "
        "/proc/self/clear_refs after tracing) minus RSS at the reset.",
        "",
        "| tokens | " + " | ".join(IMPLEMENTATIONS) + " |",
        "|---" * (1 + len(IMPLEMENTATIONS)) + "|",
    ]
    for length in lengths:
        case = str(length)
        cells = [
            f"{peak[name][case]:.0f}" if case in peak.get(name, {}) else "n/a"
            for name in IMPLEMENTATIONS
        ]
        rows.append(f"| {length} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=IMPLEMENTATIONS)
    parser.add_argument("--length", type=int)
    parser.add_argument("--model-dir")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=[512, 1024, 2048]
    )
    parser.add_argument(
        "--implementations", nargs="+", default=list(IMPLEMENTATIONS)
    )
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.length, args.model_dir)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    before = harness.machine_state()
    repo = os.path.dirname(os.path.dirname(HERE))
    runs = {name: {} for name in args.implementations}
    errors = {name: {} for name in args.implementations}
    with tempfile.TemporaryDirectory() as work_dir:
        hf_dir, preset_dir = _build_checkpoints(work_dir)
        for length in args.lengths:
            arms = []
            try:
                for name in args.implementations:
                    model_dir = (
                        hf_dir if name.startswith("hf_tf") else (preset_dir)
                    )
                    env = {"PYTHONPATH": repo, "TF_CPP_MIN_LOG_LEVEL": "2"}
                    if name.startswith("hf_tf"):
                        env["TF_USE_LEGACY_KERAS"] = "1"
                    command = [
                        sys.executable,
                        os.path.abspath(__file__),
                        "--worker",
                        name,
                        "--length",
                        str(length),
                        "--model-dir",
                        model_dir,
                    ]
                    try:
                        arms.append(harness.Arm(name, command, env=env))
                    except RuntimeError as error:
                        logger.error("%s", error)
                        errors[name][str(length)] = "error (see log)"
                failures = {}
                measured = harness.interleave(
                    arms,
                    ["step"],
                    args.repeats,
                    log=logger.info,
                    errors=failures,
                )
                for name, failure in failures.items():
                    logger.error("%s at %s: %s", name, length, failure)
                    errors[name][str(length)] = (
                        "error: " + (failure["step"].splitlines()[-1][:120])
                    )
            finally:
                for arm in arms:
                    arm.close()
            for name, cases in measured.items():
                if "step" in cases:
                    runs[name][str(length)] = cases["step"]
    results = {
        "argv": sys.argv[1:],
        "config": CONFIG,
        "lengths": args.lengths,
        "repeats": args.repeats,
        "machine_before": before,
        "machine_after": harness.machine_state(),
        "wall_s": {
            n: {c: harness.summary(r["wall_s"]) for c, r in cases.items()}
            for n, cases in runs.items()
        },
        "cpu_s": {
            n: {c: harness.summary(r["cpu_s"]) for c, r in cases.items()}
            for n, cases in runs.items()
        },
        "peak_mb": {
            n: {c: r["output"]["peak_mb"] for c, r in cases.items()}
            for n, cases in runs.items()
        },
        "errors": errors,
    }
    markdown = _markdown(results)
    harness.write_results(args.out_dir, results, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
