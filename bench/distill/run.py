"""Distillation benchmark: a 2-layer student distilled from a 4-layer
teacher against the same student trained without one.

Every model is trained by the real local pipeline (`textmill run`) on the
default corpus (`textmill corpus`), in one work dir, so the runs share
ingest, statistics and (for the students) Transform:

- `teacher`: `--preset tiny4` (4 layers, hidden 128), its byte-level BPE
  learned by Transform, `--teacher-steps` steps;
- `distilled`: `--preset tiny` (2 layers, hidden 128) `--distill-from` the
  teacher's preset: the teacher's tokenizer, initialised from its layers
  0 and 2, trained on 5 KL + 2 LM + 1 cosine (temperature 2),
  `--student-steps` steps;
- `scratch`: the same student from random weights with the same tokenizer
  (`tokenizer.init_from` the teacher's preset) and the LM loss alone;
- `teacher_init`: the student initialised from the teacher's layers like
  `distilled` but trained on the LM loss alone (`distill_kl_weight` and
  `distill_cosine_weight` 0), which separates what the initialisation
  gives from what the teacher's outputs give.

The students have the same steps, batches, learning rate and seed. Eval
perplexity is ModelValidator's, on the same eval windows for every model
(same tokenizer, same packing); `val_loss` after every `--eval-every`
steps comes from each run's `history.csv`. Generation speed is greedy
decoding of `--new-tokens` tokens (no stop token) by `CausalLMGenerator`
on each model's preset, batches 1 and 8, timed by `bench/harness.py`
(own process per model, warm-up, interleaved repeats, medians). Size:
parameters, SavedModel bytes, float32 TFLite bytes.

Run: `python bench/distill/run.py` (about 15 minutes on 2 shared
cores); writes `results.json` and `results.md` beside this file.
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


def _dir_bytes(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


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


def _val_losses(history: list[dict]) -> list[float]:
    return [round(float(row["val_loss"]), 4) for row in history]


def _perplexity(run: dict) -> float:
    return run["summary"]["validation"]["candidate"]["perplexity"]


def markdown(args, results: dict) -> str:
    runs, gen = results["runs"], results["generation_tokens_per_s"]
    sizes = results["sizes"]
    teacher_ppl = runs["teacher"]["validation"]["candidate"]["perplexity"]
    lines = [
        "# Distillation: a 2-layer student from a 4-layer teacher",
        "",
        f"Corpus: the default corpus (`textmill corpus`, "
        f"{results['documents']} documents; eval split "
        f"{results['eval_documents']} documents, "
        f"{results['eval_windows']} windows of {args.sequence_length} "
        "tokens scored for every model). Teacher: `tiny4` (4 layers, "
        f"hidden 128, 4 heads), {args.teacher_steps} steps. Students: "
        f"`tiny` (2 layers, same widths), {args.student_steps} steps each; "
        f"batch {args.batch_size} x {args.sequence_length} tokens, "
        "learning rate 1e-3 (cosine, 10 % warm-up), seed 0, the "
        "teacher's tokenizer "
        f"({results['vocabulary_size']} tokens). Distillation: "
        "temperature 2, weights KL 5, LM 2, cosine 1.",
        "",
        "| model | eval perplexity | / teacher | val_loss every "
        f"{args.eval_every} steps | training tokens/s | "
        "generation tokens/s, batch 1 | batch 8 | parameters | "
        "SavedModel bytes | TFLite float32 bytes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("teacher", *STUDENTS):
        if name not in runs:
            continue
        run = runs[name]
        ppl = run["validation"]["candidate"]["perplexity"]
        speed = gen.get(name)
        cells = (
            [spread_text(speed[f"batch_{b}"], "{:.0f}") for b in BATCHES]
            if speed
            else ["-", "-"]
        )
        lines.append(
            f"| {name} | {ppl:.1f} | {ppl / teacher_ppl:.3f} | "
            f"{', '.join(f'{v:.3f}' for v in run['val_losses'])} | "
            f"{run['train_tokens_per_second']:.0f} | {cells[0]} | "
            f"{cells[1]} | {sizes[name]['parameters'] or '-'} | "
            f"{sizes[name]['savedmodel_bytes']} | "
            f"{sizes[name]['tflite_float32_bytes']} |"
        )
    findings = results["findings"]
    lines += [
        "",
        f"- Distilled vs scratch at {args.student_steps} steps: eval "
        f"perplexity {findings['distilled_ppl']:.1f} vs "
        f"{findings['scratch_ppl']:.1f} "
        f"({findings['distilled_gain_over_scratch']:+.1%}; 95 % paired "
        "bootstrap interval of the gain over the eval windows "
        f"[{findings['interval'][0]:+.1%}, {findings['interval'][1]:+.1%}]).",
        *(
            [
                f"- Teacher-initialised, LM loss only: "
                f"{findings['teacher_init_ppl']:.1f}: the initialisation "
                f"alone gives {findings['init_gain_over_scratch']:+.1%} "
                "over scratch, the teacher's outputs on top of it "
                f"{findings['distillation_gain_over_init']:+.1%}."
            ]
            if "teacher_init_ppl" in findings
            else []
        ),
        f"- Distilled student vs teacher: perplexity x"
        f"{findings['distilled_over_teacher']:.3f}, generation "
        f"{findings['speedup_batch_1']:.2f}x (batch 1) and "
        f"{findings['speedup_batch_8']:.2f}x (batch 8) the teacher's "
        f"tokens/s, {findings['parameter_ratio']:.2f} of its parameters.",
        f"- Training with the teacher: "
        f"{findings['training_speed_ratio']:.2f}x the tokens/s of training "
        "without it (pipeline Trainer wall time, evaluation and "
        "checkpoints included).",
        "",
        "Training tokens/s: the Trainer's tokens over its wall time "
        "(`throughput.json`); `teacher_init` runs the teacher's forward "
        "pass like `distilled` though its weights are 0. Generation: greedy, "
        f"{args.new_tokens} new tokens per row after an 8-token prompt, "
        "no stop token.",
        "",
        *method_lines(
            args.repeats, 1, results["machine_before"], results["machine_after"]
        ),
        f"Wall time of the whole benchmark: {results['wall_s'] / 60:.1f} min.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--teacher-steps", type=int, default=300)
    parser.add_argument("--student-steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--students",
        default=",".join(STUDENTS),
        help="students to train (teacher_init is optional)",
    )
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args()
    if args.serve:
        _worker(args.serve, args.new_tokens)
        return

    started = time.perf_counter()
    before = machine_state()
    args.work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_distill_")
    corpus_dir = os.path.join(args.work_dir, "corpus")
    if not os.path.isdir(corpus_dir) and _textmill("corpus", corpus_dir):
        raise RuntimeError("textmill corpus failed")
    args.corpus = os.path.join(corpus_dir, "*")

    runs = {"teacher": run_pipeline(args, "teacher", "tiny4", {})}
    teacher_preset = runs["teacher"]["summary"]["preset_dir"]
    distill = ("--distill-from", teacher_preset)
    runs["distilled"] = run_pipeline(args, "distilled", "tiny", {}, distill)
    runs["scratch"] = run_pipeline(
        args,
        "scratch",
        "tiny",
        {"tokenizer": {"init_from": teacher_preset}},
    )
    if "teacher_init" not in args.students:
        return _report(args, runs, before, started)
    runs["teacher_init"] = run_pipeline(
        args,
        "teacher_init",
        "tiny",
        {"distill_kl_weight": 0.0, "distill_cosine_weight": 0.0},
        distill,
    )
    _report(args, runs, before, started)


def _report(args, runs: dict, before: dict, started: float) -> None:
    presets = {name: runs[name]["summary"]["preset_dir"] for name in runs}
    generation, parameters = time_generation(
        args, {name: presets[name] for name in TIMED}
    )
    results = _collect(args, runs, generation, parameters)
    results["machine_before"] = before
    results["machine_after"] = machine_state()
    results["wall_s"] = time.perf_counter() - started
    write_results(args.out_dir, results, markdown(args, results))
    print(markdown(args, results))


def _collect(args, runs, generation, parameters) -> dict:
    import keras_hub

    from textmill.components.model_validator.gate import compare

    sizes, out_runs = {}, {}
    for name, run in runs.items():
        summary = run["summary"]
        training = summary["training"]
        preset = summary["preset_dir"]
        sizes[name] = {
            "parameters": parameters.get(name)
            or int(
                keras_hub.models.GPT2Backbone.from_preset(preset).count_params()
            ),
            "savedmodel_bytes": _dir_bytes(summary["serving_model_dir"]),
            "tflite_float32_bytes": summary["tflite"]["variants"]["float32"][
                "bytes"
            ],
        }
        out_runs[name] = {
            "validation": summary["validation"],
            "val_losses": _val_losses(run["history"]),
            "history": run["history"],
            "train_tokens_per_second": training["train_tokens_per_second"],
            "train_seconds": training["train_seconds"],
            "pipeline_wall_s": run["wall_s"],
            "preset_dir": preset,
        }
    ppl = {name: _perplexity(run) for name, run in runs.items()}
    windows = {
        name: _window_nll(args, runs[name]) for name in ("distilled", "scratch")
    }
    comparison = compare(
        "perplexity", windows["distilled"], windows["scratch"], 0.95
    )
    gen = generation
    first = runs["teacher"]["summary"]["validation"]["candidate"]
    with open(
        os.path.join(runs["teacher"]["summary"]["preset_dir"], "vocab.json")
    ) as f:
        vocabulary_size = len(json.load(f))
    ingest = runs["teacher"]["summary"]["ingest"]
    return {
        "sizes_note": "parameters of the backbone (the LM head is tied)",
        "documents": ingest["written"]["train"] + ingest["written"]["eval"],
        "eval_documents": ingest["written"]["eval"],
        "eval_windows": first["windows"],
        "vocabulary_size": vocabulary_size,
        "settings": {
            k: v for k, v in vars(args).items() if k not in ("serve",)
        },
        "runs": out_runs,
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
            "training_speed_ratio": out_runs["distilled"][
                "train_tokens_per_second"
            ]
            / out_runs["scratch"]["train_tokens_per_second"],
        },
    }


def _window_nll(args, run: dict) -> dict:
    """The pushed model's perplexity with per-window samples on the
    validator's eval windows (for the paired bootstrap between two
    students)."""
    from textmill.families.distilgpt2.family import evaluate

    summary = run["summary"]
    return evaluate(
        summary["serving_model_dir"],
        _transformed_examples(args),
        summary["validation"]["candidate"]["windows"],
    )


def _transformed_examples(args):
    """The students' transformed Examples artifact (shared by their runs)."""
    from tfx.types import standard_artifacts

    root = os.path.join(
        args.work_dir,
        "work",
        "pipeline_root",
        "Transform",
        "transformed_examples",
    )
    newest = max(os.listdir(root), key=int)
    artifact = standard_artifacts.Examples()
    artifact.uri = os.path.join(root, newest)
    artifact.split_names = '["train", "eval"]'
    return artifact


if __name__ == "__main__":
    main()
