"""Byte-level BPE throughput: textmill's in-graph tokenizer vs `tokenizers`.

The corpus is the default corpus (standard-library docstrings, one document
per module). A byte-level BPE is trained on it with `train_byte_bpe`; then
each implementation tokenizes the whole corpus, `--batch-size` documents per
call, in its own process:

- `textmill`: `ByteBPETokenizer.tokenize` inside a `tf.function` (string
  batch in, ragged ids out), TensorFlow's default thread pools;
- `tokenizers`: `Tokenizer.encode_batch` of the `tokenizers` library (Rust)
  with the same files, its default parallelism (one thread per core);
- `tokenizers_1thread`: the same with `TOKENIZERS_PARALLELISM=false`.

Every implementation must give the same ids (checked). Throughput: tokens of
the corpus divided by the fastest of `--repeats` passes after a warm-up
pass, wall clock; process CPU time is reported too (steadier when other work
shares the machine).

Run: `python bench/tokenizer/run.py` (a few minutes on 2 cores); writes
`bench/tokenizer/results.json` and `results.md` beside this file.
"""

import argparse
import gzip
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IMPLEMENTATIONS = ("textmill", "tokenizers", "tokenizers_1thread")

logger = logging.getLogger("bench.tokenizer")


def _read_corpus(path: str) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle]


def _batches(documents: list[str], batch_size: int) -> list[list[str]]:
    return [
        documents[start : start + batch_size]
        for start in range(0, len(documents), batch_size)
    ]


def _measure(encode_all, ids_of, repeats: int) -> dict:
    """Runs `encode_all` once to warm up, then `repeats` timed times.

    `ids_of` turns `encode_all()`'s output into lists of ids, untimed.
    """
    ids = ids_of(encode_all())
    wall, cpu = [], []
    for _ in range(repeats):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        encode_all()
        wall.append(time.perf_counter() - wall_start)
        cpu.append(time.process_time() - cpu_start)
    digest = hashlib.sha256(json.dumps(ids).encode()).hexdigest()
    return {
        "tokens": sum(len(row) for row in ids),
        "wall_s": min(wall),
        "cpu_s": min(cpu),
        "ids_sha256": digest,
    }


def _worker(implementation, corpus_path, bpe_dir, batch_size, repeats):
    batches = _batches(_read_corpus(corpus_path), batch_size)
    vocab_txt = os.path.join(bpe_dir, "vocab.txt")
    merges_txt = os.path.join(bpe_dir, "merges.txt")
    if implementation == "textmill":
        import tensorflow as tf

        from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer

        tokenizer = ByteBPETokenizer(vocab_txt, merges_txt)
        tokenize = tf.function(
            tokenizer.tokenize,
            input_signature=[tf.TensorSpec([None], tf.string)],
        )
        encoded = [
            tf.constant([text.encode("utf-8") for text in batch])
            for batch in batches
        ]

        def encode_all():
            return [tokenize(batch) for batch in encoded]

        def ids_of(outputs):
            return [row for ids in outputs for row in ids.to_list()]

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

        def encode_all():
            return [tokenizer.encode_batch(batch) for batch in batches]

        def ids_of(outputs):
            return [encoding.ids for batch in outputs for encoding in batch]

    print(json.dumps(_measure(encode_all, ids_of, repeats)))


def _run_worker(implementation, corpus_path, bpe_dir, args) -> dict:
    env = dict(os.environ)
    if implementation == "tokenizers_1thread":
        env["TOKENIZERS_PARALLELISM"] = "false"
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        implementation,
        "--corpus",
        corpus_path,
        "--bpe-dir",
        bpe_dir,
        "--batch-size",
        str(args.batch_size),
        "--repeats",
        str(args.repeats),
    ]
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{implementation} worker failed:\n{completed.stderr[-4000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


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


def _write_results(results: dict) -> None:
    with open(os.path.join(HERE, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
        handle.write("\n")
    corpus = results["corpus"]
    rows = results["implementations"]
    ours = rows["textmill"]["tokens_per_s"]
    lines = [
        "# Byte-level BPE tokenizer throughput",
        "",
        f"Corpus: the default corpus (standard-library docstrings), "
        f"{corpus['documents']} documents, {corpus['megabytes']} MB, "
        f"{rows['textmill']['tokens']} tokens; vocabulary of "
        f"{corpus['vocab_size']} tokens trained on it. Batches of "
        f"{results['batch_size']} documents. Machine: {results['machine']}.",
        "Time: fastest of the timed passes over the whole corpus after a "
        "warm-up pass; every implementation gives the same ids.",
        "",
        "| implementation | tokens/s (wall) | wall s | CPU s "
        "| tokens/s ratio to textmill |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['tokens_per_s']:,.0f} | {row['wall_s']:.2f} "
            f"| {row['cpu_s']:.2f} | {row['tokens_per_s'] / ours:.2f} |"
        )
    lines += [
        "",
        f"tokenizers / textmill throughput: "
        f"{results['tokenizers_over_textmill']:.2f}x "
        f"(single-threaded tokenizers: "
        f"{results['tokenizers_1thread_over_textmill']:.2f}x).",
        "",
    ]
    with open(os.path.join(HERE, "results.md"), "w") as handle:
        handle.write("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=IMPLEMENTATIONS)
    parser.add_argument("--corpus")
    parser.add_argument("--bpe-dir")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vocab-size", type=int, default=16384)
    args = parser.parse_args()
    if args.worker:
        _worker(
            args.worker,
            args.corpus,
            args.bpe_dir,
            args.batch_size,
            args.repeats,
        )
        return
    logging.basicConfig(level=logging.INFO)
    with tempfile.TemporaryDirectory() as work_dir:
        corpus_path, bpe_dir, corpus = _prepare(work_dir, args.vocab_size)
        rows = {}
        for implementation in IMPLEMENTATIONS:
            logger.info("Running %s", implementation)
            row = _run_worker(implementation, corpus_path, bpe_dir, args)
            row["tokens_per_s"] = row["tokens"] / row["wall_s"]
            rows[implementation] = row
    digests = {row["ids_sha256"] for row in rows.values()}
    if len(digests) != 1:
        raise RuntimeError(f"The implementations gave different ids: {rows}")
    ours = rows["textmill"]["tokens_per_s"]
    results = {
        "corpus": corpus,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "machine": f"{os.cpu_count()} CPU cores, shared with other work",
        "implementations": rows,
        "tokenizers_over_textmill": rows["tokenizers"]["tokens_per_s"] / ours,
        "tokenizers_1thread_over_textmill": (
            rows["tokenizers_1thread"]["tokens_per_s"] / ours
        ),
    }
    _write_results(results)
    logger.info("Wrote %s", os.path.join(HERE, "results.md"))


if __name__ == "__main__":
    main()
