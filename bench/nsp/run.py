"""NSP benchmark: BERT pretraining throughput, and SentencePairGen speed.

1. Training examples per second of one MLM + NSP training step (forward,
   backward, Adam update) for two implementations of the same BERT, each in
   its own process, at each sequence length:

   - `textmill`: `BertPretrainer` on keras-hub's encoder (Keras 3, TF
     backend); its MLM head scores only the masked positions;
   - `hf_tf`: `transformers.TFBertForPreTraining` (Keras 2, run with
     `TF_USE_LEGACY_KERAS=1`), which scores every position and lets the
     loss ignore the unmasked ones (labels -100).

   Both train with `fit` on the same kind of batch (random ids, two
   segments, 15% of the tokens masked), Adam at 1e-4, dropout 0.1, no XLA
   (Keras turns XLA off on CPU-only machines; set here for both). Time: the
   wall time of `--steps` steps after two warm-up steps (tracing excluded).

2. SentencePairGen documents per second through its real Beam pipeline on
   a synthetic corpus, DirectRunner in multi-processing mode with 1 and 2
   worker processes (pipeline start-up included; the wall time of
   `Executor.Do`). The two runs' pairs are compared for equality.

Run: `python bench/nsp/run.py` (about 10 minutes on 2 cores); writes
`bench/nsp/results.json` and `results.md` beside this file. `--parts
sentence_pairs` (or `training`) re-measures one part and keeps the other's
last results.
"""

import argparse
import glob
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IMPLEMENTATIONS = ("textmill", "hf_tf")
PARTS = ("training", "sentence_pairs")
CONFIG = {
    "vocabulary_size": 30522,
    "num_layers": 4,
    "hidden_dim": 256,
    "num_heads": 4,
    "intermediate_dim": 1024,
    "max_sequence_length": 512,
    "batch_size": 16,
    "mask_rate": 0.15,
}
WORDS = (
    "river stone lantern orchard harbor meadow signal copper violet ember "
    "window garden market thunder pepper ribbon canyon silver marble fable "
    "the a of and to in is was for on with as by at from that this"
).split()

logger = logging.getLogger("bench.nsp")


def _batch(length: int):
    """One batch: ids, segments, mask positions and labels (numpy)."""
    import numpy as np

    rng = np.random.default_rng(0)
    batch, vocab = CONFIG["batch_size"], CONFIG["vocabulary_size"]
    slots = math.ceil(CONFIG["mask_rate"] * length)
    token_ids = rng.integers(1000, vocab, (batch, length)).astype("int32")
    token_ids[:, 0] = 101  # [CLS]
    token_ids[:, length // 2] = 102  # [SEP]
    token_ids[:, -1] = 102
    segment_ids = np.zeros((batch, length), "int32")
    segment_ids[:, length // 2 + 1 :] = 1
    positions = np.stack(
        [
            np.sort(rng.choice(np.arange(1, length - 1), slots, False))
            for _ in range(batch)
        ]
    ).astype("int32")
    labels = np.take_along_axis(token_ids, positions, axis=1)
    masked = token_ids.copy()
    np.put_along_axis(masked, positions, 103, axis=1)  # [MASK]
    return {
        "token_ids": masked,
        "segment_ids": segment_ids,
        "padding_mask": np.ones((batch, length), "int32"),
        "mask_positions": positions,
        "mask_labels": labels,
        "is_next": rng.integers(0, 2, batch).astype("int32"),
    }


def _textmill_dataset(data):
    import numpy as np
    import tensorflow as tf

    x = {
        name: data[name]
        for name in (
            "token_ids",
            "segment_ids",
            "padding_mask",
            "mask_positions",
        )
    }
    y = {"mlm": data["mask_labels"], "nsp": data["is_next"]}
    weights = {
        "mlm": np.ones(data["mask_labels"].shape, "float32"),
        "nsp": np.ones(data["is_next"].shape, "float32"),
    }
    return tf.data.Dataset.from_tensors((x, y, weights)).repeat()


def _hf_dataset(data):
    import numpy as np
    import tensorflow as tf

    labels = np.full(data["token_ids"].shape, -100, "int32")
    np.put_along_axis(
        labels, data["mask_positions"], data["mask_labels"], axis=1
    )
    features = {
        "input_ids": data["token_ids"],
        "token_type_ids": data["segment_ids"],
        "attention_mask": data["padding_mask"],
        "labels": labels,
        # BERT's class 0 is "B follows A".
        "next_sentence_label": 1 - data["is_next"],
    }
    return tf.data.Dataset.from_tensors(features).repeat()


def _worker(implementation: str, length: int, steps: int) -> None:
    """Measures one implementation at one length (in this process)."""
    if implementation == "hf_tf":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf

    tf.random.set_seed(0)
    data = _batch(length)
    if implementation == "hf_tf":
        from transformers import BertConfig, TFBertForPreTraining

        model = TFBertForPreTraining(
            BertConfig(
                vocab_size=CONFIG["vocabulary_size"],
                hidden_size=CONFIG["hidden_dim"],
                num_hidden_layers=CONFIG["num_layers"],
                num_attention_heads=CONFIG["num_heads"],
                intermediate_size=CONFIG["intermediate_dim"],
                max_position_embeddings=CONFIG["max_sequence_length"],
            )
        )
        model.compile(
            optimizer=tf.keras.optimizers.Adam(1e-4), jit_compile=False
        )
        dataset = _hf_dataset(data)
    else:
        import keras

        from textmill.trainer.models.bert import BertBackbone, BertPretrainer

        backbone = BertBackbone(
            **{
                key: CONFIG[key]
                for key in (
                    "vocabulary_size",
                    "num_layers",
                    "hidden_dim",
                    "num_heads",
                    "intermediate_dim",
                    "max_sequence_length",
                )
            }
        )
        model = BertPretrainer(backbone)
        model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
        dataset = _textmill_dataset(data)
    model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)  # warm-up
    start, start_cpu = time.perf_counter(), time.process_time()
    history = model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - start_cpu
    print(
        json.dumps(
            {
                "examples_per_s": CONFIG["batch_size"] * steps / elapsed,
                "step_s": elapsed / steps,
                "cpu_s_per_step": cpu / steps,
                "steps": steps,
                "loss": float(history.history["loss"][-1]),
            }
        )
    )


def _run_worker(implementation: str, length: int, steps: int) -> dict:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        implementation,
        "--length",
        str(length),
        "--steps",
        str(steps),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        logger.error(
            "%s at %s failed:\n%s", implementation, length, done.stderr
        )
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _write_corpus(examples_dir: str, documents: int) -> None:
    """Synthetic TextExampleGen-style Examples: train split only."""
    import tensorflow as tf

    rng = random.Random(0)
    directory = os.path.join(examples_dir, "Split-train")
    os.makedirs(directory)
    path = os.path.join(directory, "data_tfrecord-00000-of-00001.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for index in range(documents):
            sentences = []
            for _ in range(rng.randint(4, 30)):
                words = [rng.choice(WORDS) for _ in range(rng.randint(5, 25))]
                sentences.append(" ".join(words).capitalize() + ".")
            feature = {
                "text": " ".join(sentences),
                "doc_id": f"doc-{index:06d}",
            }
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        key: tf.train.Feature(
                            bytes_list=tf.train.BytesList(
                                value=[value.encode()]
                            )
                        )
                        for key, value in feature.items()
                    }
                )
            )
            writer.write(example.SerializeToString())


def _read_pairs(uri: str) -> list[bytes]:
    import tensorflow as tf

    files = glob.glob(os.path.join(uri, "Split-train", "*.gz"))
    return sorted(
        record.numpy()
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP")
    )


def _sentence_pairs_bench(documents: int, workers: list[int]) -> dict:
    import apache_beam as beam
    from tfx.types import artifact_utils, standard_artifacts

    from textmill.components.sentence_pairs import spec
    from textmill.components.sentence_pairs.executor import Executor

    results = {}
    pairs = {}
    with tempfile.TemporaryDirectory() as work_dir:
        examples = standard_artifacts.Examples()
        examples.uri = os.path.join(work_dir, "examples")
        examples.split_names = artifact_utils.encode_split_names(["train"])
        _write_corpus(examples.uri, documents)
        for count in workers:
            output = standard_artifacts.Examples()
            output.uri = os.path.join(work_dir, f"pairs-{count}")
            argv = [
                "--direct_running_mode=multi_processing",
                f"--direct_num_workers={count}",
            ]
            context = Executor.Context(
                tmp_dir=os.path.join(work_dir, "tmp"),
                make_beam_pipeline_fn=lambda argv=argv: beam.Pipeline(
                    argv=argv
                ),
            )
            start = time.perf_counter()
            Executor(context).Do(
                {spec.EXAMPLES_KEY: [examples]},
                {spec.SENTENCE_PAIRS_KEY: [output]},
                {
                    spec.TARGET_LENGTH_KEY: 125,
                    spec.LENGTH_UNIT_KEY: "tokens",
                    spec.SHORT_SEQ_PROB_KEY: 0.1,
                    spec.MAX_SENTENCE_CHARS_KEY: 2000,
                    spec.SEED_KEY: 0,
                },
            )
            elapsed = time.perf_counter() - start
            pairs[count] = _read_pairs(output.uri)
            results[str(count)] = {
                "documents": documents,
                "pairs": len(pairs[count]),
                "wall_s": elapsed,
                "documents_per_s": documents / elapsed,
            }
            logger.info(
                "SentencePairGen, %s worker(s): %s", count, results[str(count)]
            )
    first = pairs[workers[0]]
    identical = all(pairs[count] == first for count in workers)
    return {"workers": results, "identical_outputs": identical}


def _markdown(training: dict, pair_gen: dict, lengths: list[int]) -> str:
    rows = [
        "# NSP benchmark",
        "",
        "## BERT MLM + NSP training throughput",
        "",
        "Config: "
        + ", ".join(f"{k}={v}" for k, v in CONFIG.items())
        + "; float32, TF backend, Adam 1e-4, dropout 0.1, no XLA, CPU "
        "(2 shared cores). Examples/s over the timed steps after 2 warm-up "
        "steps, and process CPU seconds per step (all threads; less "
        "sensitive to other load on the machine). textmill: "
        "`BertPretrainer` (Keras 3); HF TF: "
        "`TFBertForPreTraining` (Keras 2), each in its own process.",
        "",
        "| tokens | textmill ex/s | HF TF ex/s | textmill / HF TF "
        "| textmill CPU s/step | HF TF CPU s/step | HF TF / textmill CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for length in lengths:
        ours = training["textmill"].get(str(length), {})
        theirs = training["hf_tf"].get(str(length), {})
        ratio = (
            f"{ours['examples_per_s'] / theirs['examples_per_s']:.2f}"
            if "examples_per_s" in ours and "examples_per_s" in theirs
            else "n/a"
        )
        cells = [
            f"{entry['examples_per_s']:.1f}"
            if "examples_per_s" in entry
            else "error"
            for entry in (ours, theirs)
        ]
        cpu = [
            f"{entry['cpu_s_per_step']:.2f}"
            if "cpu_s_per_step" in entry
            else "error"
            for entry in (ours, theirs)
        ]
        cpu_ratio = (
            f"{theirs['cpu_s_per_step'] / ours['cpu_s_per_step']:.2f}"
            if "cpu_s_per_step" in ours and "cpu_s_per_step" in theirs
            else "n/a"
        )
        rows.append(
            f"| {length} | {cells[0]} | {cells[1]} | {ratio} | {cpu[0]} "
            f"| {cpu[1]} | {cpu_ratio} |"
        )
    rows += [
        "",
        "## SentencePairGen documents per second",
        "",
        "Real Beam pipeline (DirectRunner, multi-processing mode), synthetic "
        "corpus of 4-30 sentences per document, target_length 125 tokens; "
        "wall time of the executor, pipeline start-up included.",
        "",
        "| workers | documents | pairs | wall s | documents/s |",
        "|---|---|---|---|---|",
    ]
    workers = pair_gen["workers"]
    for count, entry in workers.items():
        rows.append(
            f"| {count} | {entry['documents']} | {entry['pairs']} | "
            f"{entry['wall_s']:.1f} | {entry['documents_per_s']:.0f} |"
        )
    counts = list(workers)
    if len(counts) > 1:
        speedup = (
            workers[counts[-1]]["documents_per_s"]
            / workers[counts[0]]["documents_per_s"]
        )
        rows.append(
            f"\n{counts[-1]} workers / {counts[0]} worker: {speedup:.2f}; "
            f"identical pairs across worker counts: "
            f"{pair_gen['identical_outputs']}"
        )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=IMPLEMENTATIONS)
    parser.add_argument("--length", type=int)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--documents", type=int, default=6000)
    parser.add_argument("--beam-workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="what to measure; the other parts keep their last results",
    )
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.length, args.steps)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results_path = os.path.join(HERE, "results.json")
    results = {"config": CONFIG}
    if set(args.parts) != set(PARTS) and os.path.isfile(results_path):
        with open(results_path) as f:
            results = json.load(f)
    if "training" in args.parts:
        training = {impl: {} for impl in IMPLEMENTATIONS}
        for length in args.lengths:
            for impl in IMPLEMENTATIONS:
                result = _run_worker(impl, length, args.steps)
                logger.info("%s %s: %s", impl, length, result)
                training[impl][str(length)] = result
        results["training"] = training
    if "sentence_pairs" in args.parts:
        results["sentence_pairs"] = _sentence_pairs_bench(
            args.documents, args.beam_workers
        )
    with open(results_path, "w") as f:
        json.dump(results, f, indent=2)
    lengths = sorted(int(n) for n in results["training"]["textmill"])
    markdown = _markdown(
        results["training"], results["sentence_pairs"], lengths
    )
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write(markdown)
    logger.info("\n%s", markdown)


if __name__ == "__main__":
    main()
