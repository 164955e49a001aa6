"""Summarization benchmark: ROUGE of the pipeline's model against Lead-1.

Runs the real local pipeline (`textmill run --family summarization`) on the
standard-library pair corpus (`textmill corpus --summaries`), then scores,
on every eval example of that run:

- `textmill`: the pushed model's greedy `summarize` output (what the
  ModelValidator scored, here over the whole eval split);
- `lead1`: the document's first sentence, the extractive baseline of the
  summarization literature.

Both with the same ROUGE (rouge_score, stemmed F1). Reports ours / Lead-1
per ROUGE type, the run's wall time and its summary perplexity.

Run: `python bench/summarization/run.py [--train-steps 400]` (about 15
minutes on 2 cores); writes `results.json` and `results.md` beside this
file.
"""

import argparse
import glob
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


def run_pipeline(work: str, train_steps: int) -> tuple[dict, float]:
    """Runs the summarization pipeline; returns its summary and wall time."""
    textmill = [sys.executable, "-m", "textmill.pipelines.cli"]
    corpus = os.path.join(work, "corpus")
    subprocess.run([*textmill, "corpus", "--summaries", corpus], check=True)
    config = os.path.join(work, "config.yaml")
    with open(config, "w") as f:
        json.dump(
            {
                "family": "summarization",
                "train": {
                    "preset": "tiny",
                    "sequence_length": 128,
                    "batch_size": 16,
                    "train_steps": train_steps,
                    "warmup_steps": train_steps // 10,
                    "checkpoint_every": train_steps,
                },
                # Every eval example.
                "validation": {"max_eval_windows": 0},
            },
            f,
        )
    start = time.perf_counter()
    subprocess.run(
        [
            *textmill,
            "run",
            "--config",
            config,
            "--data",
            os.path.join(corpus, "*"),
            "--work-dir",
            os.path.join(work, "run"),
            "--serving-dir",
            os.path.join(work, "serving"),
        ],
        check=True,
    )
    wall = time.perf_counter() - start
    with open(os.path.join(work, "run", "summary.json")) as f:
        return json.load(f), wall


def eval_examples(work: str):
    """The run's transformed eval examples."""
    from tfx.types import standard_artifacts

    from textmill.families.summarization import load_eval_examples

    (uri,) = glob.glob(
        os.path.join(
            work,
            "run",
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
    args = parser.parse_args()

    from textmill.families.summarization import ROUGE_TYPES, rouge

    with tempfile.TemporaryDirectory() as work:
        summary, wall = run_pipeline(work, args.train_steps)
        candidate = summary["validation"]["candidate"]
        rows = eval_examples(work)
    references = [row.reference for row in rows]
    baseline = rouge([lead1(row.document) for row in rows], references)
    ours = {name: candidate[name] for name in ROUGE_TYPES}
    results = {
        "train_steps": args.train_steps,
        "eval_examples": len(rows),
        "pipeline_wall_s": round(wall, 1),
        "summary_perplexity": candidate["perplexity"],
        "rouge": {"textmill": ours, "lead1": baseline},
        "ratio_textmill_over_lead1": {
            name: ours[name] / baseline[name] for name in ROUGE_TYPES
        },
    }
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    lines = [
        "# bench/summarization",
        "",
        f"Tiny GPT-2 trained {args.train_steps} steps on the stdlib pair "
        f"corpus; {len(rows)} eval examples; pipeline wall "
        f"{wall / 60:.1f} min; summary perplexity "
        f"{candidate['perplexity']:.1f}.",
        "",
        "| ROUGE F1 | textmill | Lead-1 | ratio |",
        "|---|---|---|---|",
        *(
            f"| {name} | {ours[name]:.4f} | {baseline[name]:.4f} | "
            f"{ours[name] / baseline[name]:.2f} |"
            for name in ROUGE_TYPES
        ),
    ]
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
