"""Byte-level BPE throughput: textmill's in-graph tokenizer vs `tokenizers`.

The corpus is the default corpus (standard-library docstrings, one document
per module). A byte-level BPE is trained on it with `train_byte_bpe`; then
every arm tokenizes the whole corpus, `--batch-size` documents per call,
and ends with the same thing: one Python list of token ids per document.
The arms (each library in its own process):

- `textmill_lists`: `ByteBPETokenizer.tokenize` inside a `tf.function`
  (string batch in, ragged ids out) and the conversion of each batch's
  ragged tensor to Python lists (`to_list()`), TensorFlow's default thread
  pools;
- `textmill_tensor`: the same without the conversion (ragged tensors out:
  what a TensorFlow input pipeline consumes), for reference;
- `tokenizers_encode_batch`: `Tokenizer.encode_batch` of the `tokenizers`
  library (Rust; it also computes offsets, attention masks and token
  strings) and `encoding.ids` of each document, its default parallelism
  (one thread per core);
- `tokenizers_encode_batch_fast`: `encode_batch_fast` (no offsets), and
  the ids;
- `..._1thread`: the two above with `TOKENIZERS_PARALLELISM=false`.

Every arm must give the same ids (checked on a digest of its lists; the
digest is computed after the clock stops). Time: see `bench/harness.py`
(one warm-up pass per arm, then `--repeats` interleaved passes; medians);
process CPU time is reported beside the wall time.

Run: `python bench/tokenizer/run.py` (a few minutes on 2 cores); writes
`bench/tokenizer/results.json` and `results.md` beside this file.
"""

import argparse
import gzip
import hashlib
import json
import logging
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import harness  # noqa: E402

# Worker processes and the arms each hosts.
GROUPS = {
    "textmill": ("textmill_lists", "textmill_tensor"),
    "tokenizers": ("tokenizers_encode_batch", "tokenizers_encode_batch_fast"),
    "tokenizers_1thread": (
        "tokenizers_encode_batch_1thread",
        "tokenizers_encode_batch_fast_1thread",
    ),
}
CASE = "corpus"

logger = logging.getLogger("bench.tokenizer")


def _read_corpus(path: str) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle]


def _batches(documents: list[str], batch_size: int) -> list[list[str]]:
    return [
        documents[start : start + batch_size]
        for start in range(0, len(documents), batch_size)
    ]


def _digest(ids) -> dict:
    """Token count and digest of a pass's output (lists, or ragged)."""
    if ids and not isinstance(ids[0], list):
        ids = [row for batch in ids for row in batch.to_list()]
    return {
        "tokens": sum(len(row) for row in ids),
        "ids_sha256": hashlib.sha256(json.dumps(ids).encode()).hexdigest(),
    }


def _serve(group: str, corpus_path: str, bpe_dir: str, batch_size: int):
    batches = _batches(_read_corpus(corpus_path), batch_size)
    cases = {}
    if group == "textmill":
        import tensorflow as tf

        from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer

        tokenizer = ByteBPETokenizer(
            os.path.join(bpe_dir, "vocab.txt"),
            os.path.join(bpe_dir, "merges.txt"),
        )
        tokenize = tf.function(
            tokenizer.tokenize,
            input_signature=[tf.TensorSpec([None], tf.string)],
        )
        encoded = [
            tf.constant([text.encode("utf-8") for text in batch])
            for batch in batches
        ]

        def lists():
            return [row for b in encoded for row in tokenize(b).to_list()]

        def tensors():
            return [tokenize(b) for b in encoded]

        cases["textmill_lists/" + CASE] = lists
        cases["textmill_tensor/" + CASE] = tensors
    else:
        from tokenizers import Tokenizer, models, pre_tokenizers

        tokenizer = Tokenizer(
            models.BPE.from_file(
                os.path.join(bpe_dir, "hf", "vocab.json"),
                os.path.join(bpe_dir, "hf", "merges.txt"),
            )
        )
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
            add_prefix_space=False
        )

        def encode_batch():
            return [e.ids for b in batches for e in tokenizer.encode_batch(b)]

        def encode_batch_fast():
            return [
                e.ids for b in batches for e in tokenizer.encode_batch_fast(b)
            ]

        suffix = "_1thread" if group.endswith("_1thread") else ""
        cases[f"tokenizers_encode_batch{suffix}/{CASE}"] = encode_batch
        cases[f"tokenizers_encode_batch_fast{suffix}/{CASE}"] = (
            encode_batch_fast
        )
    harness.serve(cases, output=_digest)


def _prepare(work_dir: str, vocab_size: int) -> tuple[str, str, dict]:
    from textmill.corpus.default_corpus import write_default_corpus
    from textmill.tokenization.bpe_files import export_hf_bpe, train_byte_bpe

    corpus_path = write_default_corpus(os.path.join(work_dir, "corpus"))
    documents = _read_corpus(corpus_path)
    bpe_dir = os.path.join(work_dir, "bpe")
    files = train_byte_bpe(documents, vocab_size, bpe_dir)
    export_hf_bpe(files, os.path.join(bpe_dir, "hf"))
    corpus = {
        "documents": len(documents),
        "megabytes": round(
            sum(len(text.encode("utf-8")) for text in documents) / 1e6, 2
        ),
        "vocab_size": files.vocab_size(),
    }
    return corpus_path, bpe_dir, corpus


def _markdown(results: dict) -> str:
    corpus = results["corpus"]
    rates = results["tokens_per_s"]
    cpu = results["cpu_s"]
    ours = rates["textmill_lists"]
    lines = [
        "# Byte-level BPE tokenizer throughput",
        "",
        "Written by `python bench/tokenizer/run.py "
        + " ".join(results["argv"])
        + "`.",
        "",
        f"Corpus: the default corpus (standard-library docstrings), "
        f"{corpus['documents']} documents, {corpus['megabytes']} MB, "
        f"{results['tokens']} tokens; vocabulary of {corpus['vocab_size']} "
        f"tokens trained on it. Batches of {results['batch_size']} "
        "documents. Every arm ends with one Python list of ids per "
        "document (except `textmill_tensor`: ragged tensors), and every "
        "arm's ids are equal (checked).",
        "",
        "Work per arm: `textmill_lists` = in-graph tokenize + `to_list()`; "
        "`textmill_tensor` = in-graph tokenize only; "
        "`tokenizers_encode_batch` = `encode_batch` (ids, offsets, masks, "
        "token strings) + `.ids`; `tokenizers_encode_batch_fast` = "
        "`encode_batch_fast` (no offsets) + `.ids`; `_1thread` rows: "
        "`TOKENIZERS_PARALLELISM=false`.",
        "",
        *harness.method_lines(
            results["repeats"],
            1,
            results["machine_before"],
            results["machine_after"],
        ),
        "",
        "| arm | tokens/s (wall) | wall s | CPU s | tokens/s vs "
        "textmill_lists | CPU s vs textmill_lists |",
        "|---|---|---|---|---|---|",
    ]
    for name, rate in rates.items():
        lines.append(
            f"| {name} | {harness.spread_text(rate, '{:,.0f}')} "
            f"| {results['wall_s'][name]['median']:.2f} "
            f"| {cpu[name]['median']:.2f} "
            f"| {harness.ratio(rate, ours):.2f} "
            f"| {harness.ratio(cpu[name], cpu['textmill_lists']):.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=GROUPS, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--bpe-dir", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--vocab-size", type=int, default=16384)
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.corpus, args.bpe_dir, args.batch_size)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    before = harness.machine_state()
    repo = os.path.dirname(os.path.dirname(HERE))
    with tempfile.TemporaryDirectory() as work_dir:
        corpus_path, bpe_dir, corpus = _prepare(work_dir, args.vocab_size)
        workers = []
        try:
            for group in GROUPS:
                env = {"PYTHONPATH": repo, "TF_CPP_MIN_LOG_LEVEL": "2"}
                if group.endswith("_1thread"):
                    env["TOKENIZERS_PARALLELISM"] = "false"
                command = [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--serve",
                    group,
                    "--corpus",
                    corpus_path,
                    "--bpe-dir",
                    bpe_dir,
                    "--batch-size",
                    str(args.batch_size),
                ]
                workers.append(harness.Arm(group, command, env=env))
            arms = [
                worker.view(name)
                for worker in workers
                for name in GROUPS[worker.name]
            ]
            runs = harness.interleave(
                arms, [CASE], args.repeats, log=logger.info
            )
        finally:
            for worker in workers:
                worker.close()
    runs = {name: cases[CASE] for name, cases in runs.items()}
    outputs = {name: run["output"] for name, run in runs.items()}
    if len({o["ids_sha256"] for o in outputs.values()}) != 1:
        raise RuntimeError(f"The arms gave different ids: {outputs}")
    tokens = outputs["textmill_lists"]["tokens"]
    results = {
        "argv": sys.argv[1:],
        "corpus": corpus,
        "tokens": tokens,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "machine_before": before,
        "machine_after": harness.machine_state(),
        "tokens_per_s": {
            name: harness.rate_summary(run["wall_s"], tokens)
            for name, run in runs.items()
        },
        "wall_s": {
            name: harness.summary(run["wall_s"]) for name, run in runs.items()
        },
        "cpu_s": {
            name: harness.summary(run["cpu_s"]) for name, run in runs.items()
        },
    }
    markdown = _markdown(results)
    harness.write_results(args.out_dir, results, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
