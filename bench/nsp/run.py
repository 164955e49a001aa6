"""NSP benchmark: BERT pretraining throughput, and SentencePairGen speed.

1. Training examples per second of one MLM + NSP training step (forward,
   backward, Adam update) of the same BERT, at each sequence length. Arms:

   - `hf_tf`: `transformers.TFBertForPreTraining` (Keras 2, run with
     `TF_USE_LEGACY_KERAS=1`): its MLM head scores every position over the
     full 30,522-token vocabulary; the loss ignores unmasked positions
     (labels -100);
   - `textmill_all_positions`: `BertPretrainer` on keras-hub's encoder
     (Keras 3, TF backend) given EVERY position as a "masked position":
     the same full-vocabulary head on every position as `hf_tf`, the loss
     weighted to the masked positions only (weight 0 elsewhere). Equal
     work: the headline ratio;
   - `textmill_masked`: `BertPretrainer` as textmill trains it, scoring
     only the masked positions (15 %): less work than the two above, for
     reference.

   All train with `fit` on the same kind of batch (random ids, two
   segments, 15 % of the tokens masked), Adam at 1e-4, dropout 0.1, no XLA
   (Keras turns XLA off on CPU-only machines; set here for both). One
   timed call = `--steps` training steps; see `bench/harness.py` for the
   warm-up, interleaving and medians. Process CPU seconds are reported
   beside the wall time.

2. SentencePairGen documents per second through its real Beam pipeline on
   a synthetic corpus, DirectRunner in multi-processing mode with 1 and 2
   worker processes (pipeline start-up included), interleaved the same
   way; the two arms' pairs are compared for equality.

Run: `python bench/nsp/run.py` (about 15 minutes on 2 cores); writes
`bench/nsp/results.json` and `results.md` beside this file.
"""

import argparse
import glob
import logging
import math
import os
import random
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import harness  # noqa: E402

# Worker processes and the arms each hosts.
GROUPS = {
    "textmill": ("textmill_all_positions", "textmill_masked"),
    "hf_tf": ("hf_tf",),
}
PAIR_ARMS = ("workers_1", "workers_2")
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


def _textmill_dataset(data, all_positions: bool):
    """textmill's batch; with `all_positions`, every position is scored.

    Every position becomes a "masked position" whose label is its original
    token, weighted 1 where the token was masked and 0 elsewhere: the
    loss is the same, and the head does the work of HF's.
    """
    import numpy as np
    import tensorflow as tf

    if all_positions:
        batch, length = data["token_ids"].shape
        positions = np.tile(np.arange(length, dtype="int32"), (batch, 1))
        labels = data["token_ids"].copy()
        np.put_along_axis(
            labels, data["mask_positions"], data["mask_labels"], axis=1
        )
        weights = np.zeros((batch, length), "float32")
        np.put_along_axis(weights, data["mask_positions"], 1.0, axis=1)
        data = dict(data, mask_positions=positions, mask_labels=labels)
        data["mlm_weights"] = weights
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
        "mlm": data.get(
            "mlm_weights", np.ones(data["mask_labels"].shape, "float32")
        ),
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


def _serve_training(group: str, lengths: list[int], steps: int) -> None:
    """Builds the group's models once; serves one case per length."""
    import tensorflow as tf

    tf.random.set_seed(0)
    cases = {}
    if group == "hf_tf":
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
        models = {"hf_tf": (model, _hf_dataset)}
    else:
        import keras

        from textmill.trainer.models.bert import BertBackbone, BertPretrainer

        models = {}
        for name in GROUPS["textmill"]:
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
            model.compile(
                optimizer=keras.optimizers.Adam(1e-4), jit_compile=False
            )
            all_positions = name == "textmill_all_positions"
            models[name] = (
                model,
                lambda data, a=all_positions: _textmill_dataset(data, a),
            )
    for name, (model, make_dataset) in models.items():
        for length in lengths:
            dataset = make_dataset(_batch(length))

            def run(model=model, dataset=dataset):
                history = model.fit(
                    dataset, steps_per_epoch=steps, epochs=1, verbose=0
                )
                return {"loss": float(history.history["loss"][-1])}

            cases[f"{name}/{length}"] = run
    harness.serve(cases)


def _serve_pairs(documents: int, work_dir: str) -> None:
    """Serves one SentencePairGen run per worker count."""
    import hashlib

    examples = _write_corpus_artifact(work_dir, documents)
    cases = {}
    for arm in PAIR_ARMS:
        count = int(arm.split("_")[1])
        cases[f"{arm}/pairs"] = lambda count=count: _sentence_pairs(
            examples, work_dir, count
        )

    def output(pairs):
        digest = hashlib.sha256(b"".join(pairs)).hexdigest()
        return {"pairs": len(pairs), "pairs_sha256": digest}

    harness.serve(cases, output=output)


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


def _write_corpus_artifact(work_dir: str, documents: int):
    from tfx.types import artifact_utils, standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(work_dir, "examples")
    examples.split_names = artifact_utils.encode_split_names(["train"])
    _write_corpus(examples.uri, documents)
    return examples


def _sentence_pairs(examples, work_dir: str, count: int) -> list[bytes]:
    """One SentencePairGen run with `count` Beam workers; its pairs."""
    import shutil

    import apache_beam as beam
    from tfx.types import standard_artifacts

    from textmill.components.sentence_pairs import spec
    from textmill.components.sentence_pairs.executor import Executor

    output = standard_artifacts.Examples()
    output.uri = os.path.join(work_dir, f"pairs-{count}")
    shutil.rmtree(output.uri, ignore_errors=True)
    argv = [
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={count}",
    ]
    context = Executor.Context(
        tmp_dir=os.path.join(work_dir, "tmp"),
        make_beam_pipeline_fn=lambda: beam.Pipeline(argv=argv),
    )
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
    return _read_pairs(output.uri)


def _markdown(results: dict) -> str:
    training = results["training"]
    wall, cpu = training["examples_per_s"], training["cpu_s_per_step"]
    lines = [
        "# NSP benchmark",
        "",
        "Written by `python bench/nsp/run.py "
        + " ".join(results["argv"])
        + "`.",
        "",
        *harness.method_lines(
            results["repeats"],
            1,
            results["machine_before"],
            results["machine_after"],
        ),
        "",
        "## BERT MLM + NSP training throughput",
        "",
        "Config: "
        + ", ".join(f"{k}={v}" for k, v in CONFIG.items())
        + f"; float32, TF backend, Adam 1e-4, dropout 0.1, no XLA. One "
        f"timed call = {results['steps']} training steps (`fit`).",
        "",
        "Work per arm: `hf_tf` (`TFBertForPreTraining`, Keras 2) and "
        "`textmill_all_positions` (`BertPretrainer`, Keras 3, every "
        "position passed as a masked position with loss weight 0 where "
        "the token is not masked) both score EVERY position over the full "
        "30,522-token vocabulary: equal work. `textmill_masked` "
        "(`BertPretrainer` as the pipeline trains it) scores only the 15 % "
        "masked positions: less work, shown for reference.",
        "",
        "| tokens | arm | examples/s | CPU s/step | examples/s vs hf_tf "
        "| hf_tf CPU s / arm CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for length in results["lengths"]:
        case = str(length)
        for name in wall:
            if case not in wall[name]:
                continue
            lines.append(
                f"| {length} | {name} | {harness.spread_text(wall[name][case])}"
                f" | {harness.spread_text(cpu[name][case], '{:.2f}')} "
                f"| {harness.ratio(wall[name][case], wall['hf_tf'][case]):.2f}"
                f" | {harness.ratio(cpu['hf_tf'][case], cpu[name][case]):.2f}"
                " |"
            )
    pairs = results.get("sentence_pairs")
    if not pairs:
        lines += [
            "",
            "SentencePairGen was not measured in this run "
            "(`--skip-sentence-pairs`).",
        ]
    else:
        rate = pairs["documents_per_s"]
        lines += [
            "",
            "## SentencePairGen documents per second",
            "",
            f"Real Beam pipeline (DirectRunner, multi-processing mode), "
            f"synthetic corpus of {pairs['documents']} documents of 4-30 "
            "sentences, target_length 125 tokens; wall time of the "
            "executor, pipeline start-up included.",
            "",
            "| arm | pairs | documents/s | vs workers_1 |",
            "|---|---|---|---|",
        ]
        for name in PAIR_ARMS:
            lines.append(
                f"| {name} | {pairs['outputs'][name]['pairs']} "
                f"| {harness.spread_text(rate[name], '{:.0f}')} "
                f"| {harness.ratio(rate[name], rate['workers_1']):.2f} |"
            )
        lines += [
            "",
            f"Identical pairs across worker counts: {pairs['identical']}.",
        ]
    return "\n".join(lines) + "\n"


def _command(args, *extra: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), *extra]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--skip-sentence-pairs", action="store_true")
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args()
    if args.serve == "sentence_pairs":
        _serve_pairs(args.documents, args.work_dir)
        return
    if args.serve:
        _serve_training(args.serve, args.lengths, args.steps)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    before = harness.machine_state()
    repo = os.path.dirname(os.path.dirname(HERE))
    base = ["--steps", str(args.steps), "--lengths", *map(str, args.lengths)]
    env = {"PYTHONPATH": repo, "TF_CPP_MIN_LOG_LEVEL": "2"}
    workers = []
    try:
        for group in GROUPS:
            extra = {"TF_USE_LEGACY_KERAS": "1"} if group == "hf_tf" else {}
            workers.append(
                harness.Arm(
                    group,
                    _command(args, "--serve", group, *base),
                    env=dict(env, **extra),
                )
            )
        arms = [w.view(name) for w in workers for name in GROUPS[w.name]]
        runs = harness.interleave(
            arms, [str(n) for n in args.lengths], args.repeats, log=logger.info
        )
    finally:
        for worker in workers:
            worker.close()
    batch = CONFIG["batch_size"]
    results = {
        "argv": sys.argv[1:],
        "config": CONFIG,
        "lengths": args.lengths,
        "steps": args.steps,
        "repeats": args.repeats,
        "machine_before": before,
        "training": {
            "examples_per_s": {
                name: {
                    case: harness.rate_summary(r["wall_s"], batch * args.steps)
                    for case, r in cases.items()
                }
                for name, cases in runs.items()
            },
            "cpu_s_per_step": {
                name: {
                    case: harness.summary([c / args.steps for c in r["cpu_s"]])
                    for case, r in cases.items()
                }
                for name, cases in runs.items()
            },
            "final_loss": {
                name: {case: r["output"] for case, r in cases.items()}
                for name, cases in runs.items()
            },
        },
    }
    if not args.skip_sentence_pairs:
        with tempfile.TemporaryDirectory() as work_dir:
            worker = harness.Arm(
                "sentence_pairs",
                _command(
                    args,
                    "--serve",
                    "sentence_pairs",
                    "--documents",
                    str(args.documents),
                    "--work-dir",
                    work_dir,
                ),
                env=env,
            )
            try:
                arms = [worker.view(name) for name in PAIR_ARMS]
                pair_runs = harness.interleave(
                    arms, ["pairs"], args.repeats, log=logger.info
                )
            finally:
                worker.close()
        outputs = {n: pair_runs[n]["pairs"]["output"] for n in PAIR_ARMS}
        results["sentence_pairs"] = {
            "documents": args.documents,
            "documents_per_s": {
                n: harness.rate_summary(
                    pair_runs[n]["pairs"]["wall_s"], args.documents
                )
                for n in PAIR_ARMS
            },
            "outputs": outputs,
            "identical": len({o["pairs_sha256"] for o in outputs.values()})
            == 1,
        }
    results["machine_after"] = harness.machine_state()
    markdown = _markdown(results)
    harness.write_results(args.out_dir, results, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
