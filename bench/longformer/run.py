"""Longformer forward+backward: textmill vs Hugging Face TF vs full attention.

For each sequence length, implementations of the same size run one
training step's forward and backward pass (gradients of a scalar loss with
respect to every trainable weight; no optimizer update) inside a
`tf.function`, each in its own process:

- `textmill`: `LongformerBackbone` (blocked sliding-window attention), loaded
  from a preset converted from the Hugging Face checkpoint below, so both
  Longformers hold the same weights; no global tokens;
- `hf_tf`: `transformers.TFLongformerModel` (Keras 2, run with
  `TF_USE_LEGACY_KERAS=1`) from a random `save_pretrained()` checkpoint; no
  global tokens: with any global token its backward pass fails inside a
  `tf.function` (transformers 4.57: "Incompatible shapes [.., 2w+1+g] vs
  [.., 2w+1]"), so the comparison is made without them;
- `textmill_global`: `textmill` with `<s>` global (what HF cannot run here);
- `full_attention`: keras-hub's `RobertaBackbone` of the same size with
  ordinary quadratic attention (the reference Longformer avoids).

Config (reduced so it runs on a 2-core CPU; documented in results.md):
2 layers, hidden 768, 12 heads, intermediate 3072, attention window 512,
vocabulary 50265, batch 1, dropout 0, float32, TF backend, no XLA.

Time: the fastest of `--repeats` steps after one warm-up step, wall clock
and process CPU time (all threads; steadier when other work shares the
machine).
Peak memory: the process's peak resident set size over all steps, warm-up
included (Linux `VmHWM`, reset through `/proc/self/clear_refs` after the
step function is traced), minus its resident size at that moment: model
weights, the runtime and tracing are excluded; what the steps allocate
(activations, gradients, workspaces) counts.

Run: `python bench/longformer/run.py` (about 10 minutes on 2 cores); writes
`bench/longformer/results.json` and `results.md` beside this file.
"""

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IMPLEMENTATIONS = ("textmill", "hf_tf", "textmill_global", "full_attention")
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


def _measure(step, repeats: int) -> dict:
    """Traces `step`, runs it once to warm up, then `repeats` timed times."""
    step.get_concrete_function()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident size
    before_kb = _status_kb("VmRSS")
    step()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "time_s": min(wall),
        "cpu_s": min(cpu),
        "peak_mb": (_status_kb("VmHWM") - before_kb) / 1024,
    }


def _inputs(length: int):
    import numpy as np

    rng = np.random.default_rng(0)
    token_ids = rng.integers(3, CONFIG["vocabulary_size"], (1, length))
    token_ids[:, 0] = 0
    return token_ids.astype("int32")


def _worker(implementation: str, length: int, model_dir: str, repeats: int):
    """Measures one implementation at one length (in this process)."""
    if implementation == "hf_tf":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf

    token_ids = tf.constant(_inputs(length))
    if implementation == "hf_tf":
        from transformers import TFLongformerModel

        model = TFLongformerModel.from_pretrained(model_dir)

        def forward():
            return model(token_ids, training=True).last_hidden_state

    elif implementation.startswith("textmill"):
        from textmill.trainer.models.longformer import LongformerBackbone

        model = LongformerBackbone.from_preset(model_dir)
        padding_mask = tf.ones_like(token_ids)
        if implementation == "textmill_global":
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

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.cast(forward(), "float32")))
        return tape.gradient(loss, model.trainable_variables)

    result = _measure(step, repeats)
    print(json.dumps(result))


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


def _run_worker(implementation, length, model_dir, repeats) -> dict:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        implementation,
        "--length",
        str(length),
        "--model-dir",
        model_dir,
        "--repeats",
        str(repeats),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        logger.error(
            "%s at %s failed:\n%s", implementation, length, done.stderr
        )
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _markdown(results: dict, lengths: list[int]) -> str:
    def value(impl, length, key, fmt):
        entry = results[impl].get(str(length), {})
        return fmt.format(entry[key]) if key in entry else "error"

    def ratio(impl, other, length, key):
        a = results[impl].get(str(length), {})
        b = results[other].get(str(length), {})
        if key in a and key in b and b[key] > 0:
            return f"{a[key] / b[key]:.2f}"
        return "n/a"

    names = "| tokens | textmill | HF TF | textmill+g | full attention |"
    rows = [
        "# Longformer forward+backward benchmark",
        "",
        "Config: "
        + ", ".join(f"{k}={v}" for k, v in CONFIG.items())
        + "; dropout 0, float32, TF backend in a tf.function, no XLA, CPU.",
        "textmill and HF TF run without global tokens (HF TF's backward "
        "fails in a tf.function when any token is global); textmill+g has "
        "`<s>` global. full attention: keras-hub RobertaBackbone, same size.",
        "",
        "## Time per step, seconds: wall (CPU)",
        "",
        names + " ours/HF wall | ours/HF CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for length in lengths:
        cells = [
            value(impl, length, "time_s", "{:.2f}")
            + value(impl, length, "cpu_s", " ({:.2f})")
            for impl in IMPLEMENTATIONS
        ]
        rows.append(
            f"| {length} | "
            + " | ".join(cells)
            + f" | {ratio('textmill', 'hf_tf', length, 'time_s')}"
            + f" | {ratio('textmill', 'hf_tf', length, 'cpu_s')} |"
        )
    rows += [
        "",
        "## Peak memory of the steps, MB",
        "",
        "Peak RSS over the steps (VmHWM, reset via /proc/self/clear_refs "
        "after tracing) minus RSS at the reset.",
        "",
        names + " ours/HF | ours+g/full |",
        "|---|---|---|---|---|---|---|",
    ]
    full = "full_attention"
    for length in lengths:
        cells = [
            value(impl, length, "peak_mb", "{:.0f}") for impl in IMPLEMENTATIONS
        ]
        rows.append(
            f"| {length} | "
            + " | ".join(cells)
            + f" | {ratio('textmill', 'hf_tf', length, 'peak_mb')}"
            + f" | {ratio('textmill_global', full, length, 'peak_mb')} |"
        )
    first, last = lengths[0], lengths[-1]
    for key, label in (("time_s", "wall"), ("cpu_s", "CPU")):
        a = results["textmill"].get(str(last), {})
        b = results["textmill"].get(str(first), {})
        if key in a and key in b:
            scaling = f"{a[key] / b[key]:.2f}"
            rows.append(
                f"\ntextmill {label} time({last}) / time({first}) = {scaling}"
            )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=IMPLEMENTATIONS)
    parser.add_argument("--length", type=int)
    parser.add_argument("--model-dir")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096]
    )
    parser.add_argument(
        "--implementations", nargs="+", default=list(IMPLEMENTATIONS)
    )
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.length, args.model_dir, args.repeats)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = {impl: {} for impl in IMPLEMENTATIONS}
    with tempfile.TemporaryDirectory() as work_dir:
        hf_dir, preset_dir = _build_checkpoints(work_dir)
        model_dirs = {
            "textmill": preset_dir,
            "textmill_global": preset_dir,
            "hf_tf": hf_dir,
        }
        for length in args.lengths:
            for impl in args.implementations:
                result = _run_worker(
                    impl, length, model_dirs.get(impl, ""), args.repeats
                )
                logger.info("%s %s: %s", impl, length, result)
                results[impl][str(length)] = result
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump({"config": CONFIG, "results": results}, f, indent=2)
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write(_markdown(results, args.lengths))
    logger.info("\n%s", _markdown(results, args.lengths))


if __name__ == "__main__":
    main()
