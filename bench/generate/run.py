"""Greedy decoding speed: textmill vs Hugging Face TF (XLA) vs PyTorch.

Every implementation continues the same prompts by 128 greedy tokens at
batch 1 and 8 with the same weights, each in its own process:

- `textmill_savedmodel`: the exported SavedModel's `generate` signature
  (raw strings in and out: in-graph tokenizer, XLA-compiled decoding loop
  with a key-value cache);
- `textmill_xla`: the Python API (`textmill.serving.sampling.generate`),
  XLA-compiled, on token ids;
- `textmill_graph`: the same loop as a plain `tf.function` (no XLA);
- `hf_tf_xla`: `transformers.TFGPT2LMHeadModel.generate` inside
  `tf.function(jit_compile=True)` (Keras 2, `TF_USE_LEGACY_KERAS=1`);
- `hf_torch`: `transformers.GPT2LMHeadModel.generate` on PyTorch (CPU),
  in a Python 3.11 virtual environment (torch 2.13.0 + transformers
  4.57.6; located with `--torch-python`, or created under /tmp from the
  torch wheel on disk; skipped with a message when neither works);
- TFLite: the whole greedy loop converted to TFLite (float32 and
  dynamic-range int8), run by `TFLiteGenerator` at batch 1: latency, file
  size, and agreement of its tokens with the SavedModel's.

Weights: a random Hugging Face GPT-2 of DistilGPT2's shape (6 layers,
hidden 768, 12 heads, intermediate 3072, vocabulary 50257, 1024
positions, no dropout) is written with `save_pretrained()` (by PyTorch, or
by the TF classes without it) and read into textmill through
`textmill.trainer.convert.gpt2.convert_gpt2`, so all hold the same weights;
their greedy tokens are compared. The prompt token ids come from a
byte-level BPE trained on the standard-library docstring corpus (the
SavedModel's tokenizer); every row has the same number of tokens.

Time: the wall clock of one `generate` call after a warm-up call of the
same shape (which compiles), the fastest of `--repeats`; tokens per second
count the new tokens actually generated in the batch.

Run: `python bench/generate/run.py` (about 10 minutes on 2 cores); writes
`bench/generate/results.json` and `results.md` beside this file.
"""

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CONFIG = {
    "n_layer": 6,
    "n_embd": 768,
    "n_head": 12,
    "n_inner": 3072,
    "vocab_size": 50257,
    "n_positions": 1024,
}
PROMPT_TOKENS = 12
TOKENIZER_VOCAB = 8192
STOP_ID = 50256  # GPT-2's <|endoftext|>: the stop token of the id paths
TORCH_VENV = "/tmp/textmill-torch311"
TORCH_REQUIREMENTS = ("torch==2.13.0", "transformers==4.57.6")
IMPLEMENTATIONS = (
    "textmill_savedmodel",
    "textmill_xla",
    "textmill_graph",
    "hf_tf_xla",
    "hf_torch",
)
TFLITE_VARIANTS = ("float32", "int8")

logger = logging.getLogger("bench.generate")


def _hf_config():
    return dict(
        CONFIG,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=STOP_ID,
        eos_token_id=STOP_ID,
    )


def _limit_threads(args) -> None:
    """Every implementation computes with `args.threads` threads."""
    if args.worker_framework == "torch":
        import torch

        torch.set_num_threads(args.threads)
    elif args.worker_framework == "tf":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)


def _timed(run, repeats: int) -> tuple[float, object]:
    """Warm-up call, then the fastest of `repeats` timed calls."""
    result = run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def _record(seconds: float, new_ids: list[list[int]]) -> dict:
    count = sum(len(row) for row in new_ids)
    return {
        "seconds": seconds,
        "new_tokens": count,
        "tokens_per_s": count / seconds,
        "first_row": new_ids[0],
    }


# Workers: each runs in its own process and prints one JSON line.


def _checkpoint_worker(args) -> dict:
    """Writes the random checkpoint with PyTorch, or the TF classes."""
    if args.framework == "torch":
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(**_hf_config()))
    else:
        import tensorflow as tf
        from transformers import GPT2Config, TFGPT2LMHeadModel

        tf.random.set_seed(0)
        model = TFGPT2LMHeadModel(GPT2Config(**_hf_config()))
        model(model.dummy_inputs)
    model.save_pretrained(args.hf_dir, safe_serialization=True)
    return {"framework": args.framework}


def _hf_torch_worker(args) -> dict:
    import torch
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(args.hf_dir).eval()
    results = {"threads": torch.get_num_threads()}
    for batch in args.batches:
        ids = torch.tensor(args.prompt_ids[:batch])

        def run(ids=ids):
            with torch.inference_mode():
                out = model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=args.new_tokens,
                    do_sample=False,
                    pad_token_id=0,
                )
            return _new_ids(out.tolist(), ids.shape[1])

        results[str(batch)] = _record(*_timed(run, args.repeats))
    return results


def _hf_tf_worker(args) -> dict:
    import tensorflow as tf
    from safetensors.numpy import load_file
    from transformers import GPT2Config, TFGPT2LMHeadModel
    from transformers.modeling_tf_pytorch_utils import (
        load_pytorch_state_dict_in_tf2_model,
    )

    # `from_pretrained` cannot read a PyTorch safetensors file without
    # torch here (transformers 4.57: "'safe_open' object is not
    # iterable"); the same loader on the file's arrays can.
    model = TFGPT2LMHeadModel(GPT2Config.from_pretrained(args.hf_dir))
    model(model.dummy_inputs)
    weights = os.path.join(args.hf_dir, "model.safetensors")
    if os.path.exists(weights):
        load_pytorch_state_dict_in_tf2_model(model, load_file(weights))
    else:
        model = TFGPT2LMHeadModel.from_pretrained(args.hf_dir)
    generate = tf.function(model.generate, jit_compile=True)
    results = {}
    for batch in args.batches:
        ids = tf.constant(args.prompt_ids[:batch], tf.int32)

        def run(ids=ids):
            out = generate(
                input_ids=ids,
                attention_mask=tf.ones_like(ids),
                max_new_tokens=args.new_tokens,
                do_sample=False,
                pad_token_id=0,
            )
            return _new_ids(out.numpy().tolist(), ids.shape[1])

        results[str(batch)] = _record(*_timed(run, args.repeats))
    return results


def _new_ids(rows: list[list[int]], prompt_length: int) -> list[list[int]]:
    """Generated ids of each row, up to and including the stop token."""
    new = []
    for row in rows:
        tokens = row[prompt_length:]
        if STOP_ID in tokens:
            tokens = tokens[: tokens.index(STOP_ID) + 1]
        new.append(tokens)
    return new


def _textmill_model(args):
    import keras_hub

    from textmill.trainer.convert.gpt2 import convert_gpt2

    preset = os.path.join(args.work_dir, "preset")
    if not os.path.isdir(preset):
        convert_gpt2(args.hf_dir, preset)
    return keras_hub.models.GPT2CausalLM.from_preset(preset, preprocessor=None)


def _textmill_worker(args) -> dict:
    import numpy as np

    from textmill.serving.sampling import CausalLMGenerator, SamplerSettings

    model = _textmill_model(args)
    jit = args.implementation == "textmill_xla"
    generator = CausalLMGenerator(model, jit_compile=jit)
    settings = SamplerSettings(
        max_new_tokens=args.new_tokens, stop_token_id=STOP_ID
    )
    results = {}
    for batch in args.batches:
        ids = np.array(args.prompt_ids[:batch], np.int32)

        def run(ids=ids):
            out = generator(ids, np.ones_like(ids, bool), settings)
            tokens, mask = out.token_ids.numpy(), out.generated_mask.numpy()
            return [
                row[m].tolist() for row, m in zip(tokens, mask, strict=True)
            ]

        results[str(batch)] = _record(*_timed(run, args.repeats))
    return results


def _tokenizer_files(work_dir: str):
    from textmill.corpus.default_corpus import write_default_corpus
    from textmill.tokenization.bpe_files import BpeFiles, train_byte_bpe

    folder = os.path.join(work_dir, "bpe")
    if os.path.isdir(folder):
        return BpeFiles(
            os.path.join(folder, "vocab.txt"),
            os.path.join(folder, "merges.txt"),
        )
    import gzip

    corpus = write_default_corpus(os.path.join(work_dir, "corpus"), 300)
    path = corpus
    if os.path.isdir(corpus):
        path = os.path.join(corpus, os.listdir(corpus)[0])
    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    return train_byte_bpe(texts, TOKENIZER_VOCAB, folder)


def _prompts_worker(args) -> dict:
    """Prompt strings and their ids (end-of-text first), equal lengths."""
    import tensorflow as tf

    from textmill.tokenization.bpe_files import export_hf_bpe
    from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer

    files = _tokenizer_files(args.work_dir)
    # The checkpoint's tokenizer files: `convert_gpt2` needs them to write
    # a preset (it fails without a preprocessor).
    if not os.path.exists(os.path.join(args.hf_dir, "vocab.json")):
        export_hf_bpe(files, args.hf_dir)
    tokenizer = ByteBPETokenizer(files.vocab_path, files.merges_path)
    eos = files.token_id("<|endoftext|>")
    sentences = [
        "Return the path of the module, or raise an error if",
        "The river runs to the sea and the sea returns it as",
        "A decoder reads one token at a time and keeps a cache",
        "Numbers such as 12 and 345 are split into tokens by",
        "When the file is missing the function logs a warning",
        "Each worker process reads its own shard of the data",
        "The scheduler retries a failed task three times before",
        "Strings are encoded as UTF-8 bytes before they are",
    ]
    prompts, prompt_ids = [], []
    for sentence in sentences:
        ids = tokenizer.tokenize(tf.constant([sentence]))[0].numpy()
        ids = ids[: PROMPT_TOKENS - 1].tolist()
        prompt_ids.append([eos] + ids)
        text = tokenizer.detokenize(tf.ragged.constant([ids], tf.int64))
        prompts.append(text.numpy()[0].decode("utf-8"))
    return {"prompts": prompts, "prompt_ids": prompt_ids, "eos_id": eos}


def _export_savedmodel(model, files, eos_id: int, path: str) -> None:
    import keras
    import tensorflow as tf

    from textmill.serving.sampling import CausalLMGenerator
    from textmill.serving.sampling.generation_signatures import (
        GenerationSignatures,
    )
    from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer

    tokenizer = ByteBPETokenizer(files.vocab_path, files.merges_path)
    max_length = model.backbone.max_sequence_length

    def prompt_ids(prompt, max_new_tokens):
        ids = tf.cast(tokenizer.tokenize(prompt), tf.int32)
        ids = ids[:, : max_length - 1 - max_new_tokens]
        bos = tf.fill([ids.nrows(), 1], eos_id)
        return tf.concat([bos, ids], axis=1)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(tokenizer)
    GenerationSignatures(
        CausalLMGenerator(model),
        prompt_ids,
        tokenizer.detokenize,
        stop_token_id=eos_id,
        vocabulary_size=model.backbone.vocabulary_size,
    ).add_endpoints(archive)
    archive.write_out(path, verbose=False)


def _savedmodel_worker(args) -> dict:
    import tensorflow as tf

    files = _tokenizer_files(args.work_dir)
    path = os.path.join(args.work_dir, "savedmodel")
    start = time.perf_counter()
    _export_savedmodel(_textmill_model(args), files, args.eos_id, path)
    export_s = time.perf_counter() - start
    generate = tf.saved_model.load(path).signatures["generate"]
    results = {"export_s": export_s}
    for batch in args.batches:
        prompts = tf.constant(args.prompts[:batch])

        def run(prompts=prompts):
            out = generate(
                prompt=prompts, max_new_tokens=tf.constant(args.new_tokens)
            )
            counts = out["num_new_tokens"].numpy().tolist()
            return [[0] * count for count in counts]  # counts only

        results[str(batch)] = _record(*_timed(run, args.repeats))
        results[str(batch)].pop("first_row")
    return results


def _tflite_worker(args) -> dict:
    import functools

    import keras
    import numpy as np

    from textmill.serving.sampling import CausalLMGenerator, SamplerSettings
    from textmill.serving.sampling.token_id_generation import (
        GENERATE_IDS,
        INPUT_SPECS,
        generate_token_ids,
    )
    from textmill.serving.tflite_conversion import (
        convert_generation_to_tflite,
    )
    from textmill.serving.tflite_generation import TFLiteGenerator

    files = _tokenizer_files(args.work_dir)
    model = _textmill_model(args)
    max_length = model.backbone.max_sequence_length
    network_dir = os.path.join(args.work_dir, "network")
    network = keras.export.ExportArchive()
    network.track(model)
    network.add_endpoint(
        GENERATE_IDS,
        functools.partial(
            generate_token_ids,
            model,
            bos_id=args.eos_id,
            stop_token_id=STOP_ID,
            max_length=max_length,
        ),
        INPUT_SPECS,
    )
    network.write_out(network_dir, verbose=False)
    # The reference: the graph loop on the same ids (the SavedModel's).
    reference = CausalLMGenerator(model, jit_compile=False)
    ids = np.array(args.prompt_ids[:1], np.int32)
    out = reference(
        ids,
        np.ones_like(ids, bool),
        SamplerSettings(max_new_tokens=args.new_tokens, stop_token_id=STOP_ID),
    )
    expected = out.token_ids.numpy()[0][out.generated_mask.numpy()[0]].tolist()
    results = {}
    for variant in TFLITE_VARIANTS:
        start = time.perf_counter()
        flatbuffer = convert_generation_to_tflite(network_dir, variant)
        convert_s = time.perf_counter() - start
        path = os.path.join(args.work_dir, f"generate_{variant}.tflite")
        with open(path, "wb") as f:
            f.write(flatbuffer)
        runner = TFLiteGenerator(
            path,
            files.vocab_path,
            files.merges_path,
            stop_token_id=STOP_ID,
            num_threads=args.threads,
        )
        prompt = [args.prompt_ids[0][1:]]  # the runner adds end-of-text

        def run(prompt=prompt, runner=runner):
            return runner.generate_ids(prompt, args.new_tokens)[0]

        record = _record(*_timed(run, args.repeats))
        got = record.pop("first_row")
        same = sum(a == b for a, b in zip(got, expected, strict=False))
        record.update(
            bytes=len(flatbuffer),
            convert_s=convert_s,
            token_agreement=same / max(len(expected), 1),
            identical=got == expected,
        )
        results[variant] = record
        del flatbuffer
    return results


WORKERS = {
    "checkpoint": _checkpoint_worker,
    "prompts": _prompts_worker,
    "hf_torch": _hf_torch_worker,
    "hf_tf_xla": _hf_tf_worker,
    "textmill_xla": _textmill_worker,
    "textmill_graph": _textmill_worker,
    "textmill_savedmodel": _savedmodel_worker,
    "tflite": _tflite_worker,
}


# The driver.


def _torch_python(requested: str | None) -> str | None:
    """A Python with torch and transformers, or None (with a message)."""
    candidates = [requested] if requested else []
    candidates.append(os.path.join(TORCH_VENV, "bin", "python"))
    for python in candidates:
        if python and _has_torch(python):
            return python
    if requested:
        logger.warning("--torch-python %s has no torch: skipping", requested)
        return None
    creator = shutil.which("python3.11")
    if creator is None:
        logger.warning(
            "No python3.11 to create %s: skipping PyTorch", TORCH_VENV
        )
        return None
    logger.info("Creating %s (%s)", TORCH_VENV, ", ".join(TORCH_REQUIREMENTS))
    try:
        subprocess.run([creator, "-m", "venv", TORCH_VENV], check=True)
        subprocess.run(
            [
                os.path.join(TORCH_VENV, "bin", "pip"),
                "install",
                "-q",
                *TORCH_REQUIREMENTS,
            ],
            check=True,
        )
    except subprocess.CalledProcessError as error:
        logger.warning(
            "Could not create %s (%s): skipping PyTorch", TORCH_VENV, error
        )
        return None
    python = os.path.join(TORCH_VENV, "bin", "python")
    return python if _has_torch(python) else None


def _has_torch(python: str) -> bool:
    if not os.path.exists(python):
        return False
    check = subprocess.run(
        [python, "-c", "import torch, transformers"], capture_output=True
    )
    return check.returncode == 0


def _run_worker(name: str, args, python: str = sys.executable, **extra):
    """Runs one worker in a fresh process; returns its JSON result."""
    framework = "torch" if python != sys.executable else "tf"
    payload = dict(vars(args), worker_framework=framework, **extra)
    env = dict(
        os.environ,
        PYTHONPATH=REPO,
        TF_CPP_MIN_LOG_LEVEL="2",
        OMP_NUM_THREADS=str(args.threads),
    )
    if name == "hf_tf_xla" or (
        name == "checkpoint" and extra.get("framework") == "tf"
    ):
        env["TF_USE_LEGACY_KERAS"] = "1"
    logger.info("Running %s", name)
    start = time.perf_counter()
    done = subprocess.run(
        [python, __file__, "--worker", name, "--payload", json.dumps(payload)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {name} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    logger.info("%s done in %.0f s", name, time.perf_counter() - start)
    return result


def _markdown(results: dict) -> str:
    batches = [str(b) for b in results["batches"]]
    runs = results["implementations"]
    lines = [
        "# Greedy generation benchmark",
        "",
        f"Config: {json.dumps(CONFIG)} (DistilGPT2's shape), random "
        "weights shared by all; float32, CPU "
        f"({results['machine']['cpus']} cores, load average "
        f"{results['machine']['load_average']} at the start: other work "
        "shared the machine).",
        f"{results['threads']} compute thread(s) per implementation. "
        f"{results['new_tokens']} new tokens after a "
        f"{PROMPT_TOKENS}-token prompt; time is one call after a warm-up "
        "call of the same shape, fastest of "
        f"{results['repeats']}.",
        "",
        "| implementation | "
        + " | ".join(f"batch {b} tok/s" for b in batches)
        + " | "
        + " | ".join(f"b{b} vs HF TF XLA" for b in batches)
        + " | "
        + " | ".join(f"b{b} vs PyTorch" for b in batches)
        + " |",
        "|---" * (1 + 3 * len(batches)) + "|",
    ]
    for name in IMPLEMENTATIONS:
        if name not in runs:
            continue
        row = [f"{runs[name][b]['tokens_per_s']:.1f}" for b in batches]
        for peer in ("hf_tf_xla", "hf_torch"):
            for b in batches:
                if peer in runs:
                    ratio = (
                        runs[name][b]["tokens_per_s"]
                        / runs[peer][b]["tokens_per_s"]
                    )
                    row.append(f"{ratio:.2f}")
                else:
                    row.append("n/a")
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines += [
        "",
        "Greedy tokens equal to PyTorch's (same weights): "
        + ", ".join(
            f"{k}: {v}" for k, v in results["same_tokens_as_torch"].items()
        ),
        "",
    ]
    if results.get("skipped"):
        lines += [f"Skipped: {results['skipped']}", ""]
    tflite = results.get("tflite")
    if tflite and "textmill_savedmodel" in runs:
        saved = runs["textmill_savedmodel"]["1"]
        lines += [
            "## TFLite generation (whole greedy loop, batch 1)",
            "",
            "| variant | file MB | size vs float32 | seconds | tok/s | "
            "tok/s vs SavedModel | tokens equal to SavedModel |",
            "|---|---|---|---|---|---|---|",
        ]
        for variant, record in tflite.items():
            lines.append(
                f"| {variant} | {record['bytes'] / 2**20:.1f} | "
                f"{record['bytes'] / tflite['float32']['bytes']:.2f} | "
                f"{record['seconds']:.2f} | {record['tokens_per_s']:.1f} | "
                f"{record['tokens_per_s'] / saved['tokens_per_s']:.2f} | "
                f"{record['token_agreement']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--payload", help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="compute threads of every implementation (1: steady timings "
        "on a machine shared with other work)",
    )
    parser.add_argument("--torch-python", help="Python with torch")
    parser.add_argument("--skip-tflite", action="store_true")
    parser.add_argument("--work-dir", help="keep intermediate files here")
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args()
    if args.worker:
        worker_args = argparse.Namespace(**json.loads(args.payload))
        _limit_threads(worker_args)
        print(json.dumps(WORKERS[args.worker](worker_args)))
        return

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_generate_")
    os.makedirs(work_dir, exist_ok=True)
    hf_dir = os.path.join(work_dir, "hf")
    base = argparse.Namespace(
        batches=args.batches,
        new_tokens=args.new_tokens,
        repeats=args.repeats,
        threads=args.threads,
        work_dir=work_dir,
        hf_dir=hf_dir,
    )
    results = {
        "config": CONFIG,
        "batches": args.batches,
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        "threads": args.threads,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 1),
            "platform": platform.platform(),
        },
        "implementations": {},
        "skipped": {},
    }
    torch_python = _torch_python(args.torch_python)
    if not os.path.isdir(hf_dir):
        if torch_python:
            _run_worker("checkpoint", base, torch_python, framework="torch")
        else:
            _run_worker("checkpoint", base, framework="tf")
    prompts = _run_worker("prompts", base)
    base = argparse.Namespace(**vars(base), **prompts)
    runs = results["implementations"]
    for name in IMPLEMENTATIONS:
        if name == "hf_torch" and not torch_python:
            results["skipped"][name] = "no Python with torch (see log)"
            continue
        python = torch_python if name == "hf_torch" else sys.executable
        try:
            runs[name] = _run_worker(name, base, python, implementation=name)
        except RuntimeError as error:
            logger.error("%s", error)
            results["skipped"][name] = str(error).splitlines()[-1]
    if not args.skip_tflite:
        try:
            results["tflite"] = _run_worker("tflite", base)
        except RuntimeError as error:
            logger.error("%s", error)
            results["skipped"]["tflite"] = str(error).splitlines()[-1]
    reference = runs.get("hf_torch")
    logger.info("Results: %s", json.dumps(runs))
    results["same_tokens_as_torch"] = {
        name: all(
            runs[name][str(b)]["first_row"] == reference[str(b)]["first_row"]
            for b in args.batches
        )
        for name in ("textmill_xla", "textmill_graph", "hf_tf_xla")
        if reference and name in runs
    }
    with open(os.path.join(args.out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(args.out_dir, "results.md"), "w") as f:
        f.write(_markdown(results))
    print(_markdown(results))


if __name__ == "__main__":
    main()
