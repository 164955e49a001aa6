"""Longformer classification inference: textmill vs Hugging Face TF.

Both arms classify the same documents with the same weights: a random
`transformers.TFLongformerForSequenceClassification` checkpoint, converted
to a textmill `LongformerClassifier` (the backbone by
`textmill.trainer.convert.longformer`, the head's `classifier.dense` and
`classifier.out_proj` copied into `pooled_dense` and `logits`). Each arm
runs in its own process (`bench/harness.py`):

- `textmill`: `LongformerClassifier` (Keras 3), called in a `tf.function`;
- `hf_tf`: `TFLongformerForSequenceClassification` (Keras 2,
  `TF_USE_LEGACY_KERAS=1`) in a `tf.function`;
- `hf_tf_xla` (only when asked for): the same in a
  `tf.function(jit_compile=True)`; its forward fails to compile
  (transformers 4.57).

`<s>` is the one global token on both sides (HF's default for sequence
classification, given explicitly here). Inference only: dropout 0,
float32, each library's default threads.

Documents: the labelled corpus of `textmill corpus --labels` (standard
library docstrings labelled by package), the first `--documents` records
(balanced over the labels). The weights are random, so there is no trained
tokenizer: a document's token ids are its UTF-8 bytes + 3 (`<s>` = 0 first,
`</s>` = 2 last, padding 1 to the length), truncated to the length.

Per length: every arm classifies every document once (in batches of
`--batch-size`); the driver compares the logits (max |difference|,
agreement of the top-1 labels) and scores each arm's accuracy against the
corpus labels. Then the arms are timed on one batch (the first
`--batch-size` documents): one warm-up call, `--repeats` interleaved calls.

Run: `python bench/longformer_classifier/run.py --lengths 1024 2048`;
writes results.json and results.md beside this file (or `--out-dir`).
"""

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import harness  # noqa: E402

IMPLEMENTATIONS = ("textmill", "hf_tf", "hf_tf_xla")
# hf_tf_xla fails to compile (transformers 4.57), so it is left out unless
# asked for with --implementations.
DEFAULT_IMPLEMENTATIONS = ("textmill", "hf_tf")
CONFIG = {
    "num_layers": 2,
    "hidden_dim": 768,
    "num_heads": 12,
    "intermediate_dim": 3072,
    "attention_window": 512,
    "vocabulary_size": 50265,
    "max_sequence_length": 4096,
}
# Standard deviation of the random weights (layer-norm scales 1 + noise):
# larger than HF's 0.02 so that the predicted label differs from document
# to document (at 0.05 every document got the same label at 1024 tokens)
# and top-1 agreement tells something.
WEIGHT_STDDEV = 0.2
START, PAD, END, BYTE_OFFSET = 0, 1, 2, 3

logger = logging.getLogger("bench.longformer_classifier")

_HF_SCRIPT = """
import sys
import numpy as np
from transformers import LongformerConfig
from transformers import TFLongformerForSequenceClassification
cfg = {config}
config = LongformerConfig(
    vocab_size=cfg["vocabulary_size"], hidden_size=cfg["hidden_dim"],
    num_hidden_layers=cfg["num_layers"], num_attention_heads=cfg["num_heads"],
    intermediate_size=cfg["intermediate_dim"],
    attention_window=cfg["attention_window"],
    max_position_embeddings=cfg["max_sequence_length"] + {pad} + 1,
    type_vocab_size=1, hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0, num_labels={num_labels})
model = TFLongformerForSequenceClassification(config)
model(np.zeros((1, 2), np.int32))
rng = np.random.default_rng(0)
for weight in model.weights:
    value = rng.normal(0.0, {stddev}, weight.shape)
    if "LayerNorm/gamma" in weight.name:
        value += 1.0
    weight.assign(value.astype(np.float32))
model.save_pretrained(sys.argv[1])
"""


def encode(texts: list[str], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Byte-level token ids and attention mask, `(len(texts), length)`.

    Args:
        texts: documents.
        length: padded length (at least 3).

    Returns:
        `(token_ids, attention_mask)`, int32; `<s>` first, `</s>` after
        the (truncated) bytes, padding after it.
    """
    token_ids = np.full((len(texts), length), PAD, np.int32)
    mask = np.zeros((len(texts), length), np.int32)
    for row, text in enumerate(texts):
        body = np.frombuffer(text.encode("utf-8"), np.uint8)[: length - 2]
        ids = np.concatenate([[START], body.astype(np.int32) + 3, [END]])
        token_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = 1
    return token_ids, mask


def load_documents(work_dir: str, count: int) -> tuple[list[str], list[str]]:
    """The first `count` (text, label) records of the labelled corpus."""
    import gzip

    from textmill.corpus.default_corpus import write_label_corpus

    path = write_label_corpus(work_dir, max_documents=count)
    with gzip.open(path, "rt") as f:
        records = [json.loads(line) for line in f]
    return [r["text"] for r in records], [r["label"] for r in records]


def build_hf_checkpoint(out_dir: str, num_labels: int, stddev: float) -> str:
    """A random HF sequence-classification checkpoint (separate process)."""
    script = _HF_SCRIPT.format(
        config=CONFIG, pad=PAD, num_labels=num_labels, stddev=stddev
    )
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    subprocess.run([sys.executable, "-c", script, out_dir], check=True, env=env)
    return out_dir


def textmill_classifier(hf_dir: str, preset_dir: str, num_labels: int):
    """The textmill `LongformerClassifier` holding the checkpoint's weights.

    Args:
        hf_dir: the HF checkpoint.
        preset_dir: where the converted backbone preset is written.
        num_labels: classes of the checkpoint's head.

    Returns:
        A `LongformerClassifier` with dropout 0.
    """
    from textmill.trainer.convert.hf_checkpoint import read_hf_weights
    from textmill.trainer.convert.longformer import (
        convert_longformer,
        load_classifier_head,
    )
    from textmill.trainer.models.longformer import (
        LongformerBackbone,
        LongformerClassifier,
    )

    backbone = LongformerBackbone.from_preset(
        convert_longformer(hf_dir, preset_dir)
    )
    classifier = LongformerClassifier(backbone, num_labels, dropout=0.0)
    load_classifier_head(classifier, read_hf_weights(hf_dir))
    return classifier


def _worker(
    implementation: str, data_path: str, hf_dir: str, batch_size: int
) -> None:
    """Serves `batch` (timed) and `all` (every document) for one arm."""
    if implementation.startswith("hf_tf"):
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf

    data = np.load(data_path)
    token_ids, mask = data["token_ids"], data["attention_mask"]
    length = token_ids.shape[1]
    spec = tf.TensorSpec((None, length), tf.int32)
    if implementation.startswith("hf_tf"):
        from transformers import TFLongformerForSequenceClassification

        model = TFLongformerForSequenceClassification.from_pretrained(hf_dir)

        def forward(ids, attention):
            global_mask = tf.one_hot(
                tf.zeros_like(ids[:, 0]), length, dtype=tf.int32
            )
            return model(
                ids,
                attention_mask=attention,
                global_attention_mask=global_mask,
                training=False,
            ).logits

    else:
        with tempfile.TemporaryDirectory() as preset_dir:
            model = textmill_classifier(
                hf_dir, preset_dir, int(data["num_labels"])
            )

        def forward(ids, attention):
            # The classifier itself makes <s> global (padding_mask 2).
            return model(
                {"token_ids": ids, "padding_mask": attention}, training=False
            )

    step = tf.function(
        forward,
        input_signature=[spec, spec],
        jit_compile=implementation.endswith("_xla"),
    )

    def run(ids, attention):
        return step(tf.constant(ids), tf.constant(attention)).numpy()

    def every_document():
        return np.concatenate(
            [
                run(token_ids[i : i + batch_size], mask[i : i + batch_size])
                for i in range(0, len(token_ids), batch_size)
            ]
        )

    harness.serve(
        {
            "batch": lambda: run(token_ids[:batch_size], mask[:batch_size]),
            "all": every_document,
        },
        info={"tensorflow": tf.__version__},
        output=lambda logits: np.asarray(logits).tolist(),
    )


def compare(logits: dict, labels: np.ndarray, reference: str) -> dict:
    """Agreement with `reference` and accuracy of every arm.

        Args:
            logits: arm -> `(documents, classes)` logits.
            labels: `(documents,)` label indices.
            reference: the arm the others are compared with.

        Returns:
            arm -> `{"accuracy", "max_abs_logit_diff", "top1_agreement",
            "distinct_predictions", "max_abs_logit"}` (the diff and agreement
            against
    `reference`).
    """
    ref = np.asarray(logits[reference])
    rows = {}
    for name, values in logits.items():
        values = np.asarray(values)
        predicted = values.argmax(axis=-1)
        rows[name] = {
            "accuracy": float((predicted == labels).mean()),
            "max_abs_logit_diff": float(np.abs(values - ref).max()),
            "top1_agreement": float((predicted == ref.argmax(-1)).mean()),
            "distinct_predictions": int(len(set(predicted.tolist()))),
            "max_abs_logit": float(np.abs(values).max()),
        }
    return rows


def run_length(
    length: int,
    arms_wanted: list[str],
    texts: list[str],
    label_ids: np.ndarray,
    num_labels: int,
    hf_dir: str,
    work_dir: str,
    args,
) -> dict:
    """Checks and times every arm at one length (fresh workers)."""
    token_ids, mask = encode(texts, length)
    data_path = os.path.join(work_dir, f"data_{length}.npz")
    np.savez(
        data_path,
        token_ids=token_ids,
        attention_mask=mask,
        num_labels=num_labels,
    )
    repo = os.path.dirname(os.path.dirname(HERE))
    arms, errors, logits = [], {}, {}
    try:
        for name in arms_wanted:
            env = {"PYTHONPATH": repo, "TF_CPP_MIN_LOG_LEVEL": "2"}
            command = [
                sys.executable,
                os.path.abspath(__file__),
                "--worker",
                name,
                "--data",
                data_path,
                "--hf-dir",
                hf_dir,
                "--batch-size",
                str(args.batch_size),
            ]
            try:
                arm = harness.Arm(name, command, env=env)
                logits[name] = arm.call("all")["output"]
                arms.append(arm)
            except RuntimeError as error:
                logger.error("%s at %s: %s", name, length, error)
                errors[name] = str(error).splitlines()[-1][:200]
        failures = {}
        measured = harness.interleave(
            arms,
            ["batch"],
            args.repeats,
            log=logger.info,
            errors=failures,
        )
        for name, failure in failures.items():
            errors[name] = failure["batch"].splitlines()[-1][:200]
    finally:
        for arm in arms:
            arm.close()
    checks = compare(logits, label_ids, "hf_tf") if "hf_tf" in logits else {}
    return {
        "checks": checks,
        "wall_s": {
            n: harness.summary(c["batch"]["wall_s"])
            for n, c in measured.items()
            if "batch" in c
        },
        "cpu_s": {
            n: harness.summary(c["batch"]["cpu_s"])
            for n, c in measured.items()
            if "batch" in c
        },
        "examples_per_s": {
            n: harness.rate_summary(c["batch"]["wall_s"], args.batch_size)
            for n, c in measured.items()
            if "batch" in c
        },
        "errors": errors,
        "tokens_in_documents": {
            "mean": float(mask.sum(1).mean()),
            "max": int(mask.sum(1).max()),
        },
    }


def markdown(results: dict) -> str:
    """results.md of a run."""
    peers = [n for n in results["implementations"] if n != "textmill"]
    lines = [
        "# Longformer classification inference benchmark",
        "",
        "Written by `python bench/longformer_classifier/run.py "
        + " ".join(results["argv"])
        + "`.",
        "",
        "Model: "
        + ", ".join(f"{k}={v}" for k, v in CONFIG.items())
        + f", {results['num_labels']} classes; RoBERTa's classification "
        "head on `<s>` (dense tanh, dense); dropout 0, float32, TF "
        "backend, CPU. Longformer-base is 12 layers of this width; fewer "
        "layers keep the run short on a shared 2-core machine.",
        "",
        "Weights: random (normal, standard deviation "
        f"{results['weight_stddev']}), drawn once in a Hugging Face "
        "`TFLongformerForSequenceClassification` and converted to "
        "textmill's `LongformerClassifier`: both arms hold the same "
        "weights. The weights are not trained, so accuracy is near chance "
        "and identical on both arms by construction when the top-1 labels "
        "agree; it is reported to show that they do, not as a model "
        "quality figure. The standard deviation is larger than HF's "
        "0.02 so that the predicted label varies between documents (at "
        "0.05 every document got the same label).",
        "",
        f"Documents: the first {results['documents']} records of the "
        "labelled corpus (`textmill corpus --labels`: standard-library "
        "docstrings labelled by package), token ids = UTF-8 bytes + 3 "
        "with `<s>` first and `</s>` last, padded (padding masked out) "
        "or truncated to the length. `<s>` is the one global token on "
        "every arm. Tokens per document (mean, max) at each length: "
        + "; ".join(
            f"{length}: {row['tokens_in_documents']['mean']:.0f}, "
            f"{row['tokens_in_documents']['max']}"
            for length, row in results["by_length"].items()
        )
        + ". Docstrings are short, so much of each row is padding: "
        "both arms still run the full padded length (the work timed), "
        "and padding does not change a document's logits.",
        "",
        "Arms: `textmill` (`LongformerClassifier` in a `tf.function`), "
        "`hf_tf` (`TFLongformerForSequenceClassification`, Keras 2, in a "
        "`tf.function`). HF's strongest setting that runs here: with "
        "`jit_compile=True` (arm `hf_tf_xla`) its forward fails "
        "(`tf2xla conversion failed` in the self-attention's `cond`, "
        "transformers 4.57); eager was not timed. No PyTorch here (not "
        "installed).",
        "",
        *harness.method_lines(
            results["repeats"],
            1,
            results["machine_before"],
            results["machine_after"],
        ),
        f"Timed work: one batch of {results['batch_size']} documents at "
        "the length; fresh worker processes for each length. Lengths "
        "finished: "
        + ", ".join(map(str, results["lengths"]))
        + " (of those asked for in the command above).",
        "",
        "## Examples per second: median (min-max) of the repeats",
        "",
        "| tokens | "
        + " | ".join(results["implementations"])
        + "".join(f" | textmill / {p}" for p in peers)
        + " |",
        "|---" * (1 + len(results["implementations"]) + len(peers)) + "|",
    ]
    for length in results["lengths"]:
        row = results["by_length"][str(length)]
        rates = row["examples_per_s"]
        cells = [
            harness.spread_text(rates[n], "{:.2f}")
            if n in rates
            else "error: " + row["errors"].get(n, "n/a")[:80]
            for n in results["implementations"]
        ]
        for peer in peers:
            cells.append(
                f"{harness.ratio(rates['textmill'], rates[peer]):.2f}"
                if "textmill" in rates and peer in rates
                else "n/a"
            )
        lines.append(f"| {length} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios above 1: textmill classifies more documents per second "
        "(ratios of medians). CPU seconds per batch (median): "
        + "; ".join(
            f"{length}: "
            + ", ".join(
                f"{n} {s['median']:.2f}"
                for n, s in results["by_length"][str(length)]["cpu_s"].items()
            )
            for length in results["lengths"]
        )
        + ".",
        "",
        "## Agreement and accuracy on all documents",
        "",
        "Against `hf_tf`'s logits, all documents.",
        "",
        "| tokens | arm | max abs logit diff | max abs logit "
        "| top-1 agreement | accuracy | distinct predicted labels |",
        "|---|---|---|---|---|---|---|",
    ]
    for length in results["lengths"]:
        for name, check in results["by_length"][str(length)]["checks"].items():
            lines.append(
                f"| {length} | {name} | {check['max_abs_logit_diff']:.2e} "
                f"| {check['max_abs_logit']:.2f} "
                f"| {check['top1_agreement']:.3f} | {check['accuracy']:.3f} "
                f"| {check['distinct_predictions']} |"
            )
    lines += [
        "",
        f"Majority-class accuracy of these documents: "
        f"{results['majority_accuracy']:.3f}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=IMPLEMENTATIONS)
    parser.add_argument("--data")
    parser.add_argument("--hf-dir")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--documents", type=int, default=32)
    parser.add_argument(
        "--implementations",
        nargs="+",
        choices=IMPLEMENTATIONS,
        default=list(DEFAULT_IMPLEMENTATIONS),
    )
    parser.add_argument("--config", help="JSON overriding CONFIG keys")
    parser.add_argument("--weight-stddev", type=float, default=WEIGHT_STDDEV)
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args()
    if args.config:
        CONFIG.update(json.loads(args.config))
    if args.worker:
        _worker(args.worker, args.data, args.hf_dir, args.batch_size)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    before = harness.machine_state()
    with tempfile.TemporaryDirectory() as work_dir:
        texts, labels = load_documents(work_dir, args.documents)
        names = sorted(set(labels))
        label_ids = np.array([names.index(label) for label in labels])
        hf_dir = build_hf_checkpoint(
            os.path.join(work_dir, "hf"), len(names), args.weight_stddev
        )
        counts = np.bincount(label_ids)
        results = {
            "argv": sys.argv[1:],
            "config": CONFIG,
            "weight_stddev": args.weight_stddev,
            "implementations": args.implementations,
            "lengths": [],
            "repeats": args.repeats,
            "batch_size": args.batch_size,
            "documents": len(texts),
            "num_labels": len(names),
            "labels": names,
            "majority_accuracy": float(counts.max() / counts.sum()),
            "machine_before": before,
            "by_length": {},
        }
        for length in args.lengths:
            results["by_length"][str(length)] = run_length(
                length,
                args.implementations,
                texts,
                label_ids,
                len(names),
                hf_dir,
                work_dir,
                args,
            )
            # Written after every length, so a cut-short run keeps the
            # lengths it finished.
            results["lengths"].append(length)
            results["machine_after"] = harness.machine_state()
            text = markdown(results)
            harness.write_results(args.out_dir, results, text)
    print(text)


if __name__ == "__main__":
    main()
