"""Distillation benchmark: a 2-layer student distilled from a 4-layer
teacher against the same student trained without one.

The teacher is trained by the real local pipeline (`textmill run
--preset tiny4`: 4 layers, hidden 128; its byte-level BPE learned by
Transform) on the default corpus (`textmill corpus`). The students (`tiny`:
2 layers, the same widths) train on that run's transformed train split,
each in its own process (in parallel), with what the Trainer uses: the
model builder, the packing (`pack_documents`), the AdamW schedule, the
loss and, for the distilled ones, `with_teacher`:

- `distilled`: initialised from the teacher's layers 0 and 2, trained on
  5 KL (temperature 2) + 2 LM + 1 cosine;
- `scratch`: random weights, the LM loss alone;
- `teacher_init` (optional): initialised like `distilled`, the LM loss
  alone (KL and cosine weights 0), which separates what the
  initialisation gives from what the teacher's outputs give.

Same steps, batches, learning rate and seed for every student. Perplexity
is scored on the same eval windows for every model (ModelValidator's
packing and window count), the teacher from its pushed SavedModel, the
students from their presets; the distilled-vs-scratch gain has a paired
bootstrap interval over the windows (the gate's `compare`). Generation
speed: greedy decoding of `--new-tokens` tokens (no stop token) by
`CausalLMGenerator` on each model's preset, batches 1 and 8, timed by
`bench/harness.py` (a process per model, warm-up, interleaved repeats,
medians). Size: parameters and weight-file bytes.

Run: `python bench/distill/run.py [--work-dir DIR]` (a rerun with the
same work dir reuses the finished teacher and students); writes
`results.json` and `results.md` beside this file.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from harness import (  # noqa: E402
    Arm,
    interleave,
    machine_state,
    method_lines,
    rate_summary,
    ratio,
    serve,
    spread_text,
    write_results,
)

STUDENTS = ("distilled", "scratch", "teacher_init")
TIMED = ("teacher", "distilled", "scratch")
BATCHES = (1, 8)


def _textmill(*args: str) -> int:
    return subprocess.run(
        [sys.executable, "-m", "textmill.pipelines.cli", *args]
    ).returncode


def run_pipeline(args, name: str, preset: str, extra: dict, flags=()):
    """Runs one `textmill run` in the shared work dir; its summary, the
    history rows and the wall time (kept in the work dir: a rerun with
    the same `--work-dir` reuses finished runs)."""
    done = os.path.join(args.work_dir, f"{name}.result.json")
    if os.path.exists(done):
        with open(done) as f:
            return json.load(f)
    config = os.path.join(args.work_dir, f"{name}.yaml")
    steps = args.teacher_steps if name == "teacher" else args.student_steps
    tokenizer = extra.pop("tokenizer", {})
    with open(config, "w") as f:
        json.dump(
            {
                "tokenizer": tokenizer,
                "train": {
                    "preset": preset,
                    "sequence_length": args.sequence_length,
                    "batch_size": args.batch_size,
                    "train_steps": steps,
                    "warmup_steps": steps // 10,
                    "checkpoint_every": args.eval_every,
                    **extra,
                },
                # Runs are compared here, not gated against each other.
                "validation": {"max_regression": 1000.0},
                "export": {"tflite_variants": ["float32"]},
            },
            f,
        )
    start = time.perf_counter()
    status = _textmill(
        "run",
        "--config",
        config,
        "--data",
        args.corpus,
        "--work-dir",
        os.path.join(args.work_dir, "work"),
        "--model-name",
        name,
        *flags,
    )
    seconds = time.perf_counter() - start
    with open(os.path.join(args.work_dir, "work", "summary.json")) as f:
        summary = json.load(f)
    if status != 0:
        raise RuntimeError(f"{name}: textmill run exited {status}")
    with open(summary["training"]["history_csv"]) as f:
        history = list(csv.DictReader(f))
    result = {"summary": summary, "history": history, "wall_s": seconds}
    with open(done, "w") as f:
        json.dump(result, f)
    return result


def _train_student(args, name: str) -> None:
    """Trains one student in this process on the teacher run's transformed
    examples with the Trainer's model, optimizer, loss and packing, and
    writes `NAME.result.json` (perplexity on the validator's eval windows,
    per-window samples, val_loss curve, tokens/s, preset)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from textmill.components.eval_windows import (
        load_eval_windows,
        split_files,
    )
    from textmill.components.model_validator.gate import (
        SAMPLES_KEY,
        metric_value,
        samples,
    )
    from textmill.config import TrainConfig
    from textmill.serving.model_metadata import read_model_metadata
    from textmill.serving.saved_model_scoring import windows_nll
    from textmill.trainer import training
    from textmill.trainer.data import TOKEN_IDS_FEATURE, pack_documents
    from textmill.trainer.distillation import (
        preset_logits_fn,
        student_of,
        with_teacher,
    )
    from textmill.trainer.models.gpt2 import build_gpt2_causal_lm

    with open(os.path.join(args.work_dir, "teacher.result.json")) as f:
        teacher = json.load(f)["summary"]
    metadata = read_model_metadata(teacher["serving_model_dir"])
    eos_id, vocab = metadata["eos_id"], metadata["vocabulary_size"]
    examples = _transformed_examples(args)
    steps = args.student_steps
    train = TrainConfig(
        preset="tiny",
        sequence_length=args.sequence_length,
        batch_size=args.batch_size,
        train_steps=steps,
        warmup_steps=steps // 10,
        distill_from=teacher["preset_dir"] if name != "scratch" else None,
        **(
            {"distill_kl_weight": 0.0, "distill_cosine_weight": 0.0}
            if name == "teacher_init"
            else {}
        ),
    )
    keras.utils.set_random_seed(train.seed)
    spec = {TOKEN_IDS_FEATURE: tf.io.VarLenFeature(tf.int64)}

    def documents(split: str, repeat: bool) -> tf.data.Dataset:
        records = tf.data.TFRecordDataset(
            split_files(examples, split), compression_type="GZIP"
        )
        if repeat:
            records = records.repeat().shuffle(512, seed=train.seed)
        return (
            records.batch(64)
            .map(lambda x: tf.io.parse_example(x, spec))
            .map(
                lambda f: tf.cast(
                    tf.RaggedTensor.from_sparse(f[TOKEN_IDS_FEATURE]),
                    tf.int32,
                )
            )
        )

    windows = pack_documents(
        documents("train", True), args.sequence_length, eos_id
    )
    train_ds = (
        windows.shuffle(1024, seed=train.seed)
        .batch(args.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    eval_windows = load_eval_windows(
        examples, args.sequence_length, eos_id, args.eval_windows
    )
    eval_ds = tf.data.Dataset.from_tensor_slices(
        (
            {
                "token_ids": eval_windows[:, :-1],
                "padding_mask": np.ones_like(eval_windows[:, :-1], bool),
            },
            eval_windows[:, 1:],
        )
    ).batch(args.batch_size)
    model = with_teacher(build_gpt2_causal_lm("tiny", vocab), train)
    model.compile(
        optimizer=training.optimizer(train),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        ),
    )
    start = time.perf_counter()
    history = model.fit(
        train_ds,
        steps_per_epoch=args.eval_every,
        epochs=steps // args.eval_every,
        validation_data=eval_ds,
        verbose=2,
    ).history
    seconds = time.perf_counter() - start
    student = student_of(model)
    preset = os.path.join(args.work_dir, f"{name}_preset")
    student.backbone.save_to_preset(preset)
    nll = windows_nll(preset_logits_fn(preset), eval_windows)
    numerator = nll.sum(axis=1)
    denominator = np.full(len(nll), nll.shape[1])
    result = {
        "perplexity": metric_value("perplexity", numerator, denominator),
        SAMPLES_KEY: {
            k: {kk: vv.tolist() for kk, vv in v.items()}
            for k, v in samples("perplexity", numerator, denominator).items()
        },
        "windows": len(nll),
        "val_losses": [round(v, 4) for v in history["val_loss"]],
        "history": {k: [float(x) for x in v] for k, v in history.items()},
        "fit_seconds": seconds,
        "train_tokens_per_second": steps
        * args.batch_size
        * args.sequence_length
        / seconds,
        "preset_dir": preset,
    }
    with open(os.path.join(args.work_dir, f"{name}.result.json"), "w") as f:
        json.dump(result, f)


def _worker(preset_dir: str, new_tokens: int) -> None:
    """Serves greedy generation of one preset's model (harness worker)."""
    import keras_hub
    import numpy as np

    from textmill.serving.sampling.causal_lm_generator import (
        CausalLMGenerator,
    )
    from textmill.serving.sampling.sampler_settings import SamplerSettings

    backbone = keras_hub.models.GPT2Backbone.from_preset(preset_dir)
    model = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    generator = CausalLMGenerator(model)
    settings = SamplerSettings(max_new_tokens=new_tokens, stop_token_id=None)
    rng = np.random.default_rng(0)
    cases = {}
    for batch in BATCHES:
        ids = rng.integers(1, backbone.vocabulary_size, (batch, 8))
        ids = ids.astype(np.int32)
        mask = np.ones_like(ids, bool)

        def run(ids=ids, mask=mask):
            out = generator(ids, mask, settings)
            return int(out.generated_mask.numpy().sum())

        cases[f"batch_{batch}"] = run
    serve(cases, info={"parameters": int(backbone.count_params())})


def time_generation(args, presets: dict) -> tuple[dict, dict]:
    arms = [
        Arm(
            name,
            [
                sys.executable,
                __file__,
                "--serve",
                preset,
                "--new-tokens",
                str(args.new_tokens),
            ],
        )
        for name, preset in presets.items()
    ]
    try:
        samples = interleave(
            arms,
            [f"batch_{b}" for b in BATCHES],
            repeats=args.repeats,
            log=print,
        )
    finally:
        for arm in arms:
            arm.close()
    rates = {
        name: {
            case: {
                **rate_summary(record["wall_s"], record["output"]),
                "new_tokens": record["output"],
            }
            for case, record in cases.items()
        }
        for name, cases in samples.items()
    }
    parameters = {arm.name: arm.info["info"]["parameters"] for arm in arms}
    return rates, parameters


def _distill_share(history: dict) -> float:
    """The KL and cosine terms' share of the last epoch's weighted loss."""
    kl, cosine = history["kl_loss"][-1], history["cosine_loss"][-1]
    return (5 * kl + cosine) / history["loss"][-1]


def markdown(args, results: dict) -> str:
    import numpy as np

    runs, gen = results["runs"], results["generation_tokens_per_s"]
    sizes, findings = results["sizes"], results["findings"]
    teacher_ppl = runs["teacher"]["perplexity"]
    lines = [
        "# Distillation: a 2-layer student from a 4-layer teacher",
        "",
        "Corpus: the default corpus (`textmill corpus`, "
        f"{results['documents']} documents, {results['eval_documents']} in "
        f"the eval split). Every model is scored on the same "
        f"{results['eval_windows']} eval windows of {args.sequence_length} "
        "tokens (ModelValidator's packing) with the teacher's tokenizer "
        f"({results['vocabulary_size']} tokens). Teacher: `tiny4` (4 "
        "layers, hidden 128, 4 heads, intermediate 512) trained by "
        f"`textmill run`, {args.teacher_steps} steps. Students: `tiny` (2 "
        f"layers, same widths), {args.student_steps} steps each on the "
        "teacher run's transformed train split, with the Trainer's model, "
        "packing, AdamW schedule (peak 1e-3, 10 % warm-up, cosine) and "
        f"loss; batch {args.batch_size} x {args.sequence_length} tokens, "
        "seed 0. `distilled`: initialised from the teacher's layers 0 and "
        "2, loss 5 KL (temperature 2) + 2 LM + 1 cosine; `scratch`: random "
        "initialisation, LM loss"
        + (
            "; `teacher_init`: initialised like `distilled`, LM loss only."
            if "teacher_init" in runs
            else "."
        ),
        "",
        "| model | eval perplexity | / teacher | val_loss every "
        f"{args.eval_every} steps | training tokens/s | "
        "generation tokens/s, batch 1 | batch 8 | parameters | "
        "weights bytes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("teacher", *STUDENTS):
        if name not in runs:
            continue
        run = runs[name]
        speed = gen.get(name)
        cells = (
            [spread_text(speed[f"batch_{b}"], "{:.0f}") for b in BATCHES]
            if speed
            else ["-", "-"]
        )
        lines.append(
            f"| {name} | {run['perplexity']:.1f} | "
            f"{run['perplexity'] / teacher_ppl:.3f} | "
            f"{', '.join(f'{v:.3f}' for v in run['val_losses'])} | "
            f"{run['train_tokens_per_second']:.0f} | {cells[0]} | "
            f"{cells[1]} | {sizes[name]['parameters']} | "
            f"{sizes[name]['weights_bytes']} |"
        )
    lines += [
        "",
        f"- Distilled vs scratch at {args.student_steps} steps: eval "
        f"perplexity {findings['distilled_ppl']:.1f} vs "
        f"{findings['scratch_ppl']:.1f}, a gain of "
        f"{findings['distilled_gain_over_scratch']:+.1%} (95 % paired "
        "bootstrap interval over the eval windows "
        f"[{findings['interval'][0]:+.1%}, {findings['interval'][1]:+.1%}]).",
        *(
            [
                "- Teacher-initialised, LM loss only: "
                f"{findings['teacher_init_ppl']:.1f}: the initialisation "
                f"alone gives {findings['init_gain_over_scratch']:+.1%} "
                "over scratch, the teacher's outputs on top of it "
                f"{findings['distillation_gain_over_init']:+.1%}."
            ]
            if "teacher_init_ppl" in findings
            else []
        ),
        "- Distilled student vs teacher: perplexity x"
        f"{findings['distilled_over_teacher']:.3f}; generation "
        f"{findings['speedup_batch_1']:.2f}x (batch 1) and "
        f"{findings['speedup_batch_8']:.2f}x (batch 8) the teacher's "
        f"tokens/s; {findings['parameter_ratio']:.2f} of its parameters.",
        "- Why the distilled student wins here: its start. After its "
        f"first {args.eval_every} steps its val_loss is "
        f"{runs['distilled']['val_losses'][0]:.3f}, already below the "
        f"teacher's final {runs['teacher']['val_losses'][-1]:.3f}: it "
        "continues training the teacher's (undertrained: its val_loss "
        f"fell {-np.diff(runs['teacher']['val_losses'])[-1]:.3f} "
        "in its last "
        f"{args.eval_every} steps) embeddings and layers 0 and 2. The "
        "teacher's outputs are a small part of the loss: in the last "
        "epoch the KL "
        f"term is {runs['distilled']['history']['kl_loss'][-1]:.4f} and "
        "the cosine term "
        f"{runs['distilled']['history']['cosine_loss'][-1]:.4f}, "
        f"{_distill_share(runs['distilled']['history']):.1%} of the "
        "weighted loss (the rest is 2 x the LM loss), and this teacher is "
        "barely better than the student's shape trained as long. This run "
        "did not measure the two parts apart (the optional `teacher_init` "
        "arm does: `--students distilled,scratch,teacher_init`).",
        "- Generation speed: at this size the 2 transformer layers the "
        "student drops are a small part of a decoding step (the 4096-token "
        "head, the loop and the sampler are the same), and the machine "
        "was shared: `scratch` and `distilled` are the same network, so "
        "their difference is the noise of this measurement.",
        "- Training with the teacher's forward pass: "
        f"{findings['training_speed_ratio']:.2f}x the tokens/s of the same "
        "student trained without it.",
        "",
        "Training tokens/s: the students' `fit` wall time (evaluation "
        "every "
        f"{args.eval_every} steps included); the teacher's from its "
        "pipeline Trainer (`throughput.json`: model building, evaluation "
        "and checkpoints included). Generation: greedy `CausalLMGenerator`"
        f", {args.new_tokens} new tokens per row after an 8-token prompt, "
        "no stop token. Weights bytes: the preset's `model.weights.h5`.",
        "",
        *method_lines(
            args.repeats, 1, results["machine_before"], results["machine_after"]
        ),
        f"Wall time: the teacher's pipeline run "
        f"{runs['teacher']['pipeline_wall_s'] / 60:.1f} min; the students "
        f"(in parallel) and the timing {results['wall_s'] / 60:.1f} min.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--train-student", help=argparse.SUPPRESS)
    parser.add_argument("--teacher-steps", type=int, default=300)
    parser.add_argument("--student-steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--eval-windows", type=int, default=200)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--students",
        default=",".join(STUDENTS),
        help="students to train, in parallel processes",
    )
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args()
    if args.serve:
        _worker(args.serve, args.new_tokens)
        return
    if args.train_student:
        _train_student(args, args.train_student)
        return

    started = time.perf_counter()
    before = machine_state()
    args.work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_distill_")
    corpus_dir = os.path.join(args.work_dir, "corpus")
    if not os.path.isdir(corpus_dir) and _textmill("corpus", corpus_dir):
        raise RuntimeError("textmill corpus failed")
    args.corpus = os.path.join(corpus_dir, "*")
    teacher = run_pipeline(args, "teacher", "tiny4", {})
    students = [n for n in args.students.split(",") if n]
    workers = {
        name: subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--train-student",
                name,
                *(
                    f"--{k.replace('_', '-')}={getattr(args, k)}"
                    for k in (
                        "student_steps",
                        "eval_every",
                        "eval_windows",
                        "sequence_length",
                        "batch_size",
                        "work_dir",
                    )
                ),
            ]
        )
        for name in students
        if not os.path.exists(
            os.path.join(args.work_dir, f"{name}.result.json")
        )
    }
    for name, worker in workers.items():
        if worker.wait():
            raise RuntimeError(f"student {name} failed ({worker.returncode})")
    runs = {"teacher": teacher}
    for name in students:
        with open(os.path.join(args.work_dir, f"{name}.result.json")) as f:
            runs[name] = json.load(f)
    presets = {"teacher": teacher["summary"]["preset_dir"]} | {
        name: runs[name]["preset_dir"] for name in students
    }
    generation, parameters = time_generation(
        args, {name: presets[name] for name in TIMED}
    )
    results = _collect(args, runs, presets, generation, parameters)
    results["machine_before"] = before
    results["machine_after"] = machine_state()
    results["wall_s"] = time.perf_counter() - started
    write_results(args.out_dir, results, markdown(args, results))
    print(markdown(args, results))


def _collect(args, runs, presets, generation, parameters) -> dict:
    import keras_hub
    import numpy as np

    from textmill.components.model_validator.gate import SAMPLES_KEY, compare
    from textmill.families.distilgpt2.family import evaluate

    teacher = runs["teacher"]["summary"]
    # The teacher on the students' windows, from its pushed SavedModel.
    teacher_scores = evaluate(
        teacher["serving_model_dir"],
        _transformed_examples(args),
        args.eval_windows,
    )
    out = {
        "teacher": {
            "perplexity": teacher_scores["perplexity"],
            "validator_perplexity": teacher["validation"]["candidate"][
                "perplexity"
            ],
            "val_losses": [
                round(float(r["val_loss"]), 4)
                for r in runs["teacher"]["history"]
            ],
            "train_tokens_per_second": teacher["training"][
                "train_tokens_per_second"
            ],
            "pipeline_wall_s": runs["teacher"]["wall_s"],
        }
    }
    for name, run in runs.items():
        if name != "teacher":
            out[name] = {
                k: v for k, v in run.items() if k not in (SAMPLES_KEY,)
            }
    sizes = {
        name: {
            "parameters": parameters.get(name)
            or int(
                keras_hub.models.GPT2Backbone.from_preset(preset).count_params()
            ),
            "weights_bytes": os.path.getsize(
                os.path.join(preset, "model.weights.h5")
            ),
        }
        for name, preset in presets.items()
    }

    def scored(name):
        run = runs[name]
        metric = {
            k: np.asarray(v) for k, v in run[SAMPLES_KEY]["perplexity"].items()
        }
        return {
            "perplexity": run["perplexity"],
            SAMPLES_KEY: {"perplexity": metric},
        }

    comparison = compare(
        "perplexity", scored("distilled"), scored("scratch"), 0.95
    )
    ppl = {name: out[name]["perplexity"] for name in out}
    gen = generation
    with open(os.path.join(presets["teacher"], "vocab.json")) as f:
        vocabulary_size = len(json.load(f))
    ingest = teacher["ingest"]
    return {
        "documents": ingest["written"]["train"] + ingest["written"]["eval"],
        "eval_documents": ingest["written"]["eval"],
        "eval_windows": teacher_scores["windows"],
        "vocabulary_size": vocabulary_size,
        "settings": {k: v for k, v in vars(args).items() if k != "serve"},
        "runs": out,
        "sizes": sizes,
        "generation_tokens_per_s": gen,
        "findings": {
            "distilled_ppl": ppl["distilled"],
            "scratch_ppl": ppl["scratch"],
            "teacher_ppl": ppl["teacher"],
            "distilled_gain_over_scratch": comparison.gain,
            "interval": [comparison.low, comparison.high],
            **(
                {
                    "teacher_init_ppl": ppl["teacher_init"],
                    "init_gain_over_scratch": 1
                    - ppl["teacher_init"] / ppl["scratch"],
                    "distillation_gain_over_init": 1
                    - ppl["distilled"] / ppl["teacher_init"],
                }
                if "teacher_init" in ppl
                else {}
            ),
            "distilled_over_teacher": ppl["distilled"] / ppl["teacher"],
            "speedup_batch_1": ratio(
                gen["distilled"]["batch_1"], gen["teacher"]["batch_1"]
            ),
            "speedup_batch_8": ratio(
                gen["distilled"]["batch_8"], gen["teacher"]["batch_8"]
            ),
            "parameter_ratio": sizes["distilled"]["parameters"]
            / sizes["teacher"]["parameters"],
            "training_speed_ratio": out["distilled"]["train_tokens_per_second"]
            / out["scratch"]["train_tokens_per_second"],
        },
    }


def _transformed_examples(args):
    """The teacher run's transformed Examples artifact (the first one that
    has both splits written)."""
    from tfx.types import standard_artifacts

    root = os.path.join(
        args.work_dir,
        "work",
        "pipeline_root",
        "Transform",
        "transformed_examples",
    )
    first = min(
        (
            name
            for name in os.listdir(root)
            if os.path.isdir(os.path.join(root, name, "Split-eval"))
            and os.listdir(os.path.join(root, name, "Split-eval"))
        ),
        key=int,
    )
    artifact = standard_artifacts.Examples()
    artifact.uri = os.path.join(root, first)
    artifact.split_names = '["train", "eval"]'
    return artifact


if __name__ == "__main__":
    main()
