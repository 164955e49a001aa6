"""Summarization benchmark: ROUGE of the pipeline's models against Lead-1.

Runs the real local pipeline on the standard-library pair corpus
(`textmill corpus --summaries`) and scores, on every eval example, with the
same ROUGE (rouge_score, stemmed F1):

- `scratch`: `textmill run --family summarization`, a tiny GPT-2 trained
  from random weights (`--train-steps`);
- `pretrained`: first `textmill run --family distilgpt2` pretrains the same
  tiny GPT-2 (`--pretrain-steps`) on the train-split pairs only, each
  written as one document (description, blank line, summary line), so no
  eval text is seen; then the summarization run fine-tunes from the
  pretraining run's preset (`--init-from`, which also imports its
  vocabulary) for the same `--train-steps`;
- `lead1`: the document's first sentence, the extractive baseline of the
  summarization literature.

Reports each model's ROUGE over Lead-1's, the runs' wall times and the
summary perplexity. Eval examples are the same in both runs: the split is a
hash of the normalised description.

Run: `python bench/summarization/run.py` (about 20 minutes on 2 cores);
writes `results.json` and `results.md` beside this file.
"""

import argparse
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def lead1(document: str) -> str:
    """The first sentence (or line) of a document."""
    first_line = document.strip().split("\n", 1)[0]
    return _SENTENCE_END.split(first_line, 1)[0]


def textmill(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "textmill.pipelines.cli", *args], check=True
    )


def run_pipeline(
    work: str, name: str, family: str, data: str, train: dict
) -> tuple[dict, float]:
    """Runs one local pipeline; returns its summary and wall time."""
    config = os.path.join(work, f"{name}.yaml")
    with open(config, "w") as f:
        json.dump(
            {
                "family": family,
                "train": {
                    "preset": "tiny",
                    "sequence_length": 128,
                    "batch_size": 16,
                    "warmup_steps": train["train_steps"] // 10,
                    "checkpoint_every": train["train_steps"],
                    **train,
                },
                # Every eval example.
                "validation": {"max_eval_windows": 0},
            },
            f,
        )
    start = time.perf_counter()
    textmill(
        "run",
        "--config",
        config,
        "--data",
        data,
        "--work-dir",
        os.path.join(work, name),
        "--serving-dir",
        os.path.join(work, "serving"),
    )
    wall = time.perf_counter() - start
    with open(os.path.join(work, name, "summary.json")) as f:
        return json.load(f), wall


def write_pretraining_corpus(pairs_path: str, out_path: str) -> int:
    """Writes the train-split pairs as documents; returns their count."""
    from textmill.components.text_example_gen.normalize import (
        doc_id,
        is_eval,
        normalize_text,
    )
    from textmill.config import IngestConfig

    eval_fraction = IngestConfig().eval_fraction
    count = 0
    with gzip.open(pairs_path, "rt") as pairs, open(out_path, "w") as out:
        for line in pairs:
            pair = json.loads(line)
            if is_eval(doc_id(normalize_text(pair["text"])), eval_fraction):
                continue
            document = pair["text"] + "\n\n" + pair["summary"]
            out.write(json.dumps({"text": document}) + "\n")
            count += 1
    return count


def eval_examples(work: str, name: str):
    """A run's transformed eval examples."""
    from tfx.types import standard_artifacts

    from textmill.families.summarization.family import load_eval_examples

    (uri,) = glob.glob(
        os.path.join(
            work,
            name,
            "pipeline_root",
            "Transform",
            "transformed_examples",
            "*",
        )
    )
    examples = standard_artifacts.Examples()
    examples.uri = uri
    examples.split_names = json.dumps(["train", "eval"])
    return load_eval_examples(examples, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-steps", type=int, default=400)
    parser.add_argument("--pretrain-steps", type=int, default=600)
    args = parser.parse_args()

    from textmill.families.summarization.family import ROUGE_TYPES, rouge

    with tempfile.TemporaryDirectory() as work:
        corpus = os.path.join(work, "corpus")
        textmill("corpus", "--summaries", corpus)
        pairs = os.path.join(corpus, "*")
        steps = {"train_steps": args.train_steps}
        scratch, scratch_wall = run_pipeline(
            work, "scratch", "summarization", pairs, steps
        )
        pretraining_data = os.path.join(work, "pretraining.jsonl")
        documents = write_pretraining_corpus(
            glob.glob(pairs)[0], pretraining_data
        )
        pretraining, pretrain_wall = run_pipeline(
            work,
            "pretrain",
            "distilgpt2",
            pretraining_data,
            {"train_steps": args.pretrain_steps},
        )
        finetuned, finetune_wall = run_pipeline(
            work,
            "finetune",
            "summarization",
            pairs,
            {**steps, "init_from": pretraining["preset_dir"]},
        )
        rows = eval_examples(work, "scratch")
        # The same eval examples (in another file order).
        assert sorted(r.document for r in rows) == sorted(
            r.document for r in eval_examples(work, "finetune")
        )
    baseline = rouge(
        [lead1(row.document) for row in rows], [row.reference for row in rows]
    )
    models = {
        "scratch": scratch["validation"]["candidate"],
        "pretrained": finetuned["validation"]["candidate"],
    }
    results = {
        "train_steps": args.train_steps,
        "pretrain_steps": args.pretrain_steps,
        "pretraining_documents": documents,
        "eval_examples": len(rows),
        "wall_s": {
            "scratch": round(scratch_wall, 1),
            "pretrain": round(pretrain_wall, 1),
            "finetune": round(finetune_wall, 1),
        },
        "summary_perplexity": {
            name: metrics["perplexity"] for name, metrics in models.items()
        },
        "rouge": {
            "lead1": baseline,
            **{
                name: {k: metrics[k] for k in ROUGE_TYPES}
                for name, metrics in models.items()
            },
        },
        "ratio_over_lead1": {
            name: {k: metrics[k] / baseline[k] for k in ROUGE_TYPES}
            for name, metrics in models.items()
        },
    }
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    lines = [
        "# bench/summarization",
        "",
        f"Tiny GPT-2 (preset `tiny`), {args.train_steps} summarization "
        f"steps; `pretrained` first trained {args.pretrain_steps} causal LM "
        f"steps on the {documents} train-split pairs. {len(rows)} eval "
        "examples. Wall time (min): scratch "
        f"{scratch_wall / 60:.1f}, pretrain {pretrain_wall / 60:.1f}, "
        f"fine-tune {finetune_wall / 60:.1f}.",
        "",
        "| ROUGE F1 | Lead-1 | scratch | pretrained | scratch / Lead-1 "
        "| pretrained / Lead-1 |",
        "|---|---|---|---|---|---|",
        *(
            f"| {k} | {baseline[k]:.4f} | {models['scratch'][k]:.4f} | "
            f"{models['pretrained'][k]:.4f} | "
            f"{models['scratch'][k] / baseline[k]:.2f} | "
            f"{models['pretrained'][k] / baseline[k]:.2f} |"
            for k in ROUGE_TYPES
        ),
        "",
        "Summary perplexity: scratch "
        f"{models['scratch']['perplexity']:.1f}, pretrained "
        f"{models['pretrained']['perplexity']:.1f}.",
    ]
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
