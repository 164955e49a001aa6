"""Greedy translation throughput: textmill's `translate` vs HF TF BART and
keras-hub's `BartSeq2SeqLM.generate`, on the same converted weights.

The weights: a random Hugging Face `TFBartForConditionalGeneration` (drawn
once in a process of its own, `TF_USE_LEGACY_KERAS=1`) over a byte-level
BPE with BART's special tokens trained on the default corpus, saved with
`save_pretrained`, converted by `textmill convert bart` (`convert_bart`).
textmill's SavedModel is exported by the translation family's own
`TranslationServing` over a transform graph that imported the checkpoint's
vocabulary, as `--init-from` does. Arms, each in its own process
(`bench/harness.py`):

- `textmill_savedmodel`: the exported SavedModel's `translate(text,
  max_new_tokens)` signature (raw strings in, text out; tokenization and
  the cached decoding loop in the graph);
- `keras_hub_generate`: keras-hub's `BartSeq2SeqLM.generate` (greedy
  sampler, its own XLA-compiled loop), on token ids;
- `hf_tf_xla`: `TFBartForConditionalGeneration.generate` in a
  `tf.function(jit_compile=True)`, on token ids;
- `hf_tf_eager`: the same `generate` without XLA.

Every arm decodes greedily from `</s>` and stops a row at `</s>` or after
`--new-tokens` tokens. The driver checks that every arm's output equals HF
eager's (token ids; the SavedModel's text against HF's tokens decoded by
the checkpoint's vocabulary, and its token counts), then times the arms,
interleaved. Tokens per second = new tokens of the batch (every row's,
its `</s>` included) / wall time of one call.

Run: `python bench/translation/run.py`; writes results.json and results.md
beside this file (or `--out-dir`).
"""

import argparse
import gzip
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

ARMS = ("textmill_savedmodel", "keras_hub_generate", "hf_tf_xla", "hf_tf_eager")
REFERENCE = "hf_tf_eager"
# bart-base's shape; the vocabulary is the benchmark's own BPE.
CONFIG = {
    "num_layers": 6,
    "hidden_dim": 768,
    "num_heads": 12,
    "intermediate_dim": 3072,
    "max_sequence_length": 128,
    "vocabulary_size": 8000,
}
BATCHES = (1, 8)
START, PAD, END = 0, 1, 2  # <s>, <pad>, </s>; </s> starts the decoder.
# Source lengths in words, unequal within a batch.
SOURCE_WORDS = (6, 19, 11, 27, 8, 15, 23, 4)

logger = logging.getLogger("bench.translation")

_HF_SCRIPT = """
import json, os, sys
import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import BartConfig, TFBartForConditionalGeneration
cfg, texts_path, out_dir = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(texts_path) as f:
    texts = json.load(f)
tokenizer = Tokenizer(models.BPE())
tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
trainer = trainers.BpeTrainer(
    vocab_size=cfg["vocabulary_size"],
    special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    show_progress=False,
)
tokenizer.train_from_iterator(texts, trainer=trainer)
os.makedirs(out_dir)
tokenizer.model.save(out_dir)
config = BartConfig(
    vocab_size=tokenizer.get_vocab_size(), d_model=cfg["hidden_dim"],
    encoder_layers=cfg["num_layers"], decoder_layers=cfg["num_layers"],
    encoder_attention_heads=cfg["num_heads"],
    decoder_attention_heads=cfg["num_heads"],
    encoder_ffn_dim=cfg["intermediate_dim"],
    decoder_ffn_dim=cfg["intermediate_dim"],
    max_position_embeddings=cfg["max_sequence_length"],
    dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
    pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
    forced_bos_token_id=None, forced_eos_token_id=None)
model = TFBartForConditionalGeneration(config)
model(input_ids=np.zeros((1, 2), np.int32),
      decoder_input_ids=np.zeros((1, 2), np.int32))
rng = np.random.default_rng(0)
# Scales under which greedy decoding moves from token to token (see
# tests/trainer/convert/bart_hf_reference.py).
for weight in model.weights:
    if "final_logits_bias" in weight.name:
        continue
    scale = 0.2
    if "embed_positions" in weight.name:
        scale = 1.0
    elif "encoder_attn/" in weight.name:
        scale = 0.1
    elif "beta" in weight.name:
        scale = 0.02
    value = rng.normal(0.0, scale, weight.shape)
    if "gamma" in weight.name:
        value += 1.0
    if "shared" in weight.name:
        value *= 2.0 / np.linalg.norm(value, axis=1, keepdims=True)
    weight.assign(value.astype(np.float32))
model.save_pretrained(out_dir)
"""


def corpus_texts(work_dir: str, count: int) -> list[str]:
    """The first `count` documents of the default corpus."""
    from textmill.corpus.default_corpus import write_default_corpus

    path = write_default_corpus(work_dir, max_documents=count)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def sources(texts: list[str]) -> list[str]:
    """One source per `SOURCE_WORDS` entry: the first words of a text."""
    return [
        " ".join(text.split()[:words])
        for text, words in zip(texts, SOURCE_WORDS, strict=False)
    ]


def new_tokens(ids: np.ndarray, end: int = END) -> list[list[int]]:
    """Each row's new tokens up to and including its first `end`.

    Args:
        ids: `[batch, steps]` decoded ids after the start token (padding
            after `end` is dropped).
        end: the stop token.
    """
    rows = []
    for row in np.asarray(ids).tolist():
        rows.append(row[: row.index(end) + 1] if end in row else row)
    return rows


def build_checkpoint(work_dir: str, texts: list[str]) -> str:
    """The random HF checkpoint with its tokenizer files (own process)."""
    texts_path = os.path.join(work_dir, "texts.json")
    with open(texts_path, "w") as f:
        json.dump(texts, f)
    hf_dir = os.path.join(work_dir, "hf")
    subprocess.run(
        [
            sys.executable,
            "-c",
            _HF_SCRIPT,
            json.dumps(CONFIG),
            texts_path,
            hf_dir,
        ],
        check=True,
        env={**os.environ, "TF_USE_LEGACY_KERAS": "1"},
    )
    return hf_dir


def export_savedmodel(preset: str, texts: list[str], work_dir: str) -> str:
    """The translation family's SavedModel of the converted checkpoint,
    over a transform graph that imported its vocabulary."""
    import functools

    import keras_hub
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import metadata_io

    from textmill.config import PipelineConfig, with_overrides
    from textmill.families import load_family
    from textmill.families.translation.export import TranslationServing
    from textmill.families.translation.transform import preprocessing_fn

    config = with_overrides(
        PipelineConfig(),
        top={"family": "translation"},
        train={
            "init_from": preset,
            "sequence_length": CONFIG["max_sequence_length"],
        },
    )
    family = load_family("translation")
    text = tf.io.FixedLenFeature([], tf.string)
    metadata = tft.DatasetMetadata.from_feature_spec(
        {"text": text, "target": text}
    )
    graph_dir = os.path.join(work_dir, "transform_graph")
    with tft_beam.Context(temp_dir=os.path.join(work_dir, "tft_tmp")):
        transform_fn = (
            [{"text": t[:200], "target": t[:200]} for t in texts[:8]],
            metadata,
        ) | tft_beam.AnalyzeDataset(
            functools.partial(
                preprocessing_fn,
                custom_config=family.transform_config(config),
            )
        )
        _ = transform_fn | tft_beam.WriteTransformFn(graph_dir)
    # The raw metadata, which TFX's Transform writes beside.
    metadata_io.write_metadata(
        metadata,
        os.path.join(graph_dir, tft.TFTransformOutput.RAW_METADATA_DIR),
    )
    model = keras_hub.models.BartSeq2SeqLM.from_preset(
        preset, preprocessor=None
    )
    serving_dir = os.path.join(work_dir, "savedmodel")
    TranslationServing(
        model,
        tft.TFTransformOutput(graph_dir),
        family.sequence_length(config),
        END,
    ).export(serving_dir, os.path.join(work_dir, "network"))
    return serving_dir


def _worker(arm: str, data_path: str, new: int) -> None:
    """Serves `batch_<n>` for one arm; each returns its rows' outputs."""
    if arm.startswith("hf_tf"):
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf

    with open(data_path) as f:
        data = json.load(f)
    cases = {}
    if arm == "textmill_savedmodel":
        import tensorflow_text  # noqa: F401  registers the tokenizer's ops

        translate = tf.saved_model.load(data["savedmodel"]).signatures[
            "translate"
        ]

        def run(batch):
            out = translate(
                text=tf.constant(data["sources"][:batch]),
                max_new_tokens=tf.constant(new, tf.int32),
            )
            return {
                # Bytes as hex: random weights make invalid UTF-8.
                "text": [t.hex() for t in out["completion"].numpy()],
                "num_new_tokens": out["num_new_tokens"].numpy().tolist(),
            }

    elif arm == "keras_hub_generate":
        import keras_hub

        model = keras_hub.models.BartSeq2SeqLM.from_preset(
            data["preset"], preprocessor=None
        )
        model.compile(sampler="greedy")

        def run(batch):
            ids = np.array(data["source_ids"][:batch], np.int32)
            prompt = np.full((batch, 1 + new), PAD, np.int32)
            prompt[:, 0] = END
            prompt_mask = np.zeros_like(prompt)
            prompt_mask[:, 0] = 1
            out = model.generate(
                {
                    "encoder_token_ids": ids,
                    "encoder_padding_mask": (ids != PAD).astype(np.int32),
                    "decoder_token_ids": prompt,
                    "decoder_padding_mask": prompt_mask,
                },
                stop_token_ids=[END],
            )
            return {"tokens": new_tokens(out["decoder_token_ids"][:, 1:])}

    else:
        from transformers import TFBartForConditionalGeneration

        model = TFBartForConditionalGeneration.from_pretrained(data["hf_dir"])

        def generate(ids, mask):
            return model.generate(
                ids,
                attention_mask=mask,
                max_new_tokens=new,
                do_sample=False,
                num_beams=1,
                eos_token_id=END,
                pad_token_id=PAD,
            )

        if arm == "hf_tf_xla":
            generate = tf.function(generate, jit_compile=True)

        def run(batch):
            ids = tf.constant(data["source_ids"][:batch], tf.int32)
            out = generate(ids, tf.cast(ids != PAD, tf.int32))
            return {"tokens": new_tokens(out.numpy()[:, 1:])}

    for batch in data["batches"]:
        cases[f"batch_{batch}"] = lambda batch=batch: run(batch)
    harness.serve(cases, info={"tensorflow": tf.__version__})


def check(outputs: dict, vocab_dir: str) -> dict:
    """Every arm's rows against `REFERENCE`'s, per case.

    Args:
        outputs: arm -> case -> the worker's output.
        vocab_dir: holds the checkpoint's vocab.json (to turn the
            reference's tokens into the bytes of the SavedModel's text).

    Returns:
        arm -> case -> `{"rows", "equal"}`.
    """
    from textmill.tokenization.byte_alphabet import symbols_to_bytes

    with open(os.path.join(vocab_dir, "vocab.json"), encoding="utf-8") as f:
        tokens = {i: token for token, i in json.load(f).items()}
    checks = {}
    for arm, cases in outputs.items():
        checks[arm] = {}
        for case, output in cases.items():
            reference = outputs[REFERENCE][case]["tokens"]
            if "tokens" in output:
                equal = [
                    ours == theirs
                    for ours, theirs in zip(
                        output["tokens"], reference, strict=True
                    )
                ]
            else:
                texts = [
                    b"".join(
                        symbols_to_bytes(tokens[t]) for t in row if t != END
                    ).strip()
                    for row in reference
                ]
                equal = [
                    bytes.fromhex(text).strip() == expected
                    and count == len(row)
                    for text, expected, count, row in zip(
                        output["text"],
                        texts,
                        output["num_new_tokens"],
                        reference,
                        strict=True,
                    )
                ]
            checks[arm][case] = {"rows": len(equal), "equal": sum(equal)}
    return checks


def markdown(results: dict) -> str:
    """results.md of a run."""
    arms = [a for a in results["arms"] if a in results["tokens_per_s"]]
    peers = [a for a in arms if a != "textmill_savedmodel"]
    cases = [f"batch_{b}" for b in results["batches"]]
    lines = [
        "# Greedy translation benchmark",
        "",
        "Written by `python bench/translation/run.py "
        + " ".join(results["argv"])
        + "`.",
        "",
        "Model: BART, "
        + ", ".join(f"{k}={v}" for k, v in results["config"].items())
        + " (bart-base is num_layers=6, hidden_dim=768, num_heads=12, "
        "intermediate_dim=3072; the vocabulary is the benchmark's own "
        "BPE), random weights drawn once in Hugging Face's "
        "`TFBartForConditionalGeneration` and converted by `textmill "
        "convert bart`: every arm holds the same weights. Float32, dropout "
        "0, TF backend, CPU.",
        "",
        "Sources: the first words of the default corpus's documents "
        f"({', '.join(map(str, SOURCE_WORDS))} words; batch 1 takes the "
        "first), unequal lengths in the batch (right-padded for the arms "
        "that take ids). Greedy decoding from `</s>`, at most "
        f"{results['new_tokens']} new tokens, a row stops at `</s>`. "
        "Tokens per second = new tokens of the batch (every row's, `</s>` "
        "included: "
        + ", ".join(
            f"batch {b}: {results['work_tokens'][f'batch_{b}']}"
            for b in results["batches"]
        )
        + ") / wall time of one call.",
        "",
        "Arms: `textmill_savedmodel` (the exported `translate` signature: "
        "raw strings in, text out), `keras_hub_generate` "
        "(`BartSeq2SeqLM.generate`, greedy sampler, XLA-compiled by "
        "keras-hub), `hf_tf_xla` (`generate` in `tf.function(jit_compile="
        "True)`), `hf_tf_eager` (`generate`). No PyTorch here.",
        "",
        *harness.method_lines(
            results["repeats"],
            1,
            results["machine_before"],
            results["machine_after"],
        ),
        "",
        "## Tokens per second: median (min-max) of the repeats",
        "",
        "| arm | "
        + " | ".join(f"batch {b} tok/s" for b in results["batches"])
        + " | "
        + " | ".join(f"b{b} textmill / arm" for b in results["batches"])
        + " | rows equal to hf_tf_eager |",
        "|---" * (2 + 2 * len(cases)) + "|",
    ]
    ours = results["tokens_per_s"].get("textmill_savedmodel", {})
    for arm in arms:
        rates = results["tokens_per_s"][arm]
        cells = [
            harness.spread_text(rates[c]) if c in rates else "n/a"
            for c in cases
        ]
        cells += [
            f"{harness.ratio(ours[c], rates[c]):.2f}"
            if c in rates and c in ours
            else "n/a"
            for c in cases
        ]
        checked = results["checks"].get(arm, {})
        cells.append(
            ", ".join(
                f"{checked[c]['equal']}/{checked[c]['rows']}"
                for c in cases
                if c in checked
            )
        )
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    if peers:
        lines += [
            "",
            "Ratios above 1: textmill's SavedModel translates more tokens "
            "per second than the arm (ratios of medians).",
        ]
    if results["errors"]:
        lines += ["", f"Errors: {json.dumps(results['errors'])}"]
    if results.get("note"):
        lines += ["", f"Note: {results['note']}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=ARMS)
    parser.add_argument("--data")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=BATCHES)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=ARMS)
    parser.add_argument("--config", help="JSON overriding CONFIG keys")
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--note", default="")
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args()
    if args.config:
        CONFIG.update(json.loads(args.config))
    if args.worker:
        _worker(args.worker, args.data, args.new_tokens)
        return
    if REFERENCE not in args.arms:
        parser.error(f"--arms must include {REFERENCE}, the reference")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    before = harness.machine_state()
    from tokenizers import Tokenizer, models, pre_tokenizers

    from textmill.trainer.convert.bart import convert_bart

    with tempfile.TemporaryDirectory() as work_dir:
        texts = corpus_texts(work_dir, args.documents)
        hf_dir = build_checkpoint(work_dir, texts)
        preset = convert_bart(hf_dir, os.path.join(work_dir, "preset"))
        savedmodel = export_savedmodel(preset, texts, work_dir)
        tokenizer = Tokenizer(
            models.BPE.from_file(
                os.path.join(hf_dir, "vocab.json"),
                os.path.join(hf_dir, "merges.txt"),
            )
        )
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
            add_prefix_space=False
        )
        batch_sources = sources(texts)
        encoded = [tokenizer.encode(s).ids for s in batch_sources]
        width = max(map(len, encoded))
        if width > CONFIG["max_sequence_length"]:
            parser.error(
                f"a source has {width} tokens, more than the model's "
                f"max_sequence_length={CONFIG['max_sequence_length']}; "
                "raise it with --config"
            )
        source_ids = [ids + [PAD] * (width - len(ids)) for ids in encoded]
        data_path = os.path.join(work_dir, "data.json")
        with open(data_path, "w") as f:
            json.dump(
                {
                    "sources": batch_sources,
                    "source_ids": source_ids,
                    "batches": args.batches,
                    "savedmodel": savedmodel,
                    "preset": preset,
                    "hf_dir": hf_dir,
                },
                f,
            )
        repo = os.path.dirname(os.path.dirname(HERE))
        arms, errors = [], {}
        try:
            for name in args.arms:
                command = [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--worker",
                    name,
                    "--data",
                    data_path,
                    "--new-tokens",
                    str(args.new_tokens),
                ]
                env = {"PYTHONPATH": repo, "TF_CPP_MIN_LOG_LEVEL": "2"}
                arms.append(harness.Arm(name, command, env=env))
            cases = [f"batch_{b}" for b in args.batches]
            measured = harness.interleave(
                arms, cases, args.repeats, log=logger.info, errors=errors
            )
        finally:
            for arm in arms:
                arm.close()
        outputs = {
            arm: {case: c["output"] for case, c in by_case.items()}
            for arm, by_case in measured.items()
        }
        work = {
            case: sum(map(len, outputs[REFERENCE][case]["tokens"]))
            for case in cases
        }
        results = {
            "argv": sys.argv[1:],
            "config": CONFIG,
            "arms": args.arms,
            "batches": args.batches,
            "new_tokens": args.new_tokens,
            "repeats": args.repeats,
            "work_tokens": work,
            "checks": check(outputs, hf_dir),
            "tokens_per_s": {
                arm: {
                    case: harness.rate_summary(c["wall_s"], work[case])
                    for case, c in by_case.items()
                }
                for arm, by_case in measured.items()
            },
            "reference_tokens": outputs[REFERENCE],
            "errors": errors,
            "machine_before": before,
            "machine_after": harness.machine_state(),
            "note": args.note,
        }
    text = markdown(results)
    harness.write_results(args.out_dir, results, text)
    print(text)


if __name__ == "__main__":
    main()
