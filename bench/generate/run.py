"""Greedy decoding speed: textmill against every peer, like with like.

Every arm continues the same prompts by `--new-tokens` greedy tokens at
batches 1, 8 and 32, on the same float32 weights, with each library's
default threading:

- `textmill_savedmodel`: the exported SavedModel's `generate` signature
  (strings in and out: in-graph tokenizer, decoding loop with a key-value
  cache, detokenizer);
- `textmill_api`: the Python API (`CausalLMGenerator`, graph mode: its
  default on CPU) on token ids;
- `keras_hub_generate`: keras-hub's own `GPT2CausalLM.generate` (greedy
  sampler, XLA: its default) on the same Keras model;
- `hf_tf_xla`: `TFGPT2LMHeadModel.generate` inside
  `tf.function(jit_compile=True)`; `hf_tf_eager`: the same without
  `tf.function` (HF's default use; by far the slowest arm, so batches
  above `--eager-max-batch` leave it out); both Keras 2
  (`TF_USE_LEGACY_KERAS=1`);
- `torch_eager`: `GPT2LMHeadModel.generate` on PyTorch 2.13 (CPU) in a
  Python 3.11 virtual environment; `torch_compile`: the same with the
  model's forward under `torch.compile` and a static cache (with
  `--torch-compile`: on 2 shared cores its compilation did not finish in 7
  minutes, so the default run leaves it out);
- `tflite_float32`, `tflite_int8`: the whole greedy loop converted to
  TFLite (float32, and dynamic-range int8 weights), run by
  `TFLiteGenerator`.
- `litert_lm_float32`, `litert_lm_int8` (batch 1: the runtime serves
  one prompt per session): textmill's `.litertlm` bundles
  (`write_litert_lm_bundle`: `prefill_32` + `decode`, a cache of 1024
  positions) in the LiteRT-LM runtime on CPU, one engine per bundle in a
  worker started with the Python of the LiteRT-LM virtual environment
  (`.venv-litert`: its packer needs protobuf >= 6.31, which TensorFlow
  2.16 cannot share). The runtime returns text: its completion is
  compared with PyTorch's tokens through their text (`greedy_parity`),
  under a `tokenizer.json` whose vocabulary is the benchmark's learned
  one padded to the model's 50257 ids (`<|t<id>|>` for the ids it lacks),
  so every generated token has a text of its own. The rows also give the
  runtime's own prefill and decode tokens/s (medians of the timed calls).

Weights: a random GPT-2 of DistilGPT2's shape (6 layers, hidden 768, 12
heads, vocabulary 50257), initialised with a standard deviation of 0.2
(HF's default 0.02 makes greedy output repeat one token; at 0.2 a row's
64 greedy tokens hold about 60 distinct ones), written by PyTorch with
`save_pretrained()` and converted for textmill with `convert_gpt2`.

Prompts: the rows of a batch have UNEQUAL lengths (4 to 20 tokens with the
begin-of-text token); every arm gets each row's own tokens (HF: left
padding and an attention mask; keras-hub and textmill: right padding).

Checks: every row of every arm's first timed call is compared with
PyTorch eager's greedy tokens (the SavedModel returns text: its completion
of each row is compared with the detokenized tokens of `textmill_api`,
which is itself checked against PyTorch). The int8 rows report the
fraction of tokens equal to PyTorch's instead.

Time: see `bench/harness.py` (warm-up per arm and batch, then
`--repeats` interleaved calls, medians). Tokens per second count the new
tokens of the batch.

Run: `python bench/generate/run.py` (about 20 minutes on 2 cores); writes
`bench/generate/results.json` and `results.md` beside this file.
"""

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, REPO)
import harness  # noqa: E402

CONFIG = {
    "n_layer": 6,
    "n_embd": 768,
    "n_head": 12,
    "n_inner": 3072,
    "vocab_size": 50257,
    "n_positions": 1024,
}
INIT_SCALE = 0.2
TOKENIZER_VOCAB = 8192
STOP_ID = 50256  # GPT-2's <|endoftext|>: the stop token of every arm
TORCH_VENV = "/tmp/textmill-torch311"
TORCH_REQUIREMENTS = ("torch==2.13.0", "transformers==4.57.6")
# Worker processes and the arms each hosts (arms of one process share its
# memory: one copy of the runtime, not one per arm).
GROUPS = {
    "textmill": (
        "textmill_savedmodel",
        "textmill_api",
        "keras_hub_generate",
        "tflite_float32",
        "tflite_int8",
    ),
    "hf_tf": ("hf_tf_xla", "hf_tf_eager"),
    "torch": ("torch_eager", "torch_compile"),
    "litert_lm": ("litert_lm_float32", "litert_lm_int8"),
}
LITERT_LM_PREFILL = 32
# The worker's case that returns the runtime's benchmark of every call.
LITERT_LM_STATS = "litert_lm_stats/all"
FLOAT32_PEERS = (
    "keras_hub_generate",
    "hf_tf_xla",
    "hf_tf_eager",
    "torch_eager",
    "torch_compile",
)
TEXTMILL = (
    "textmill_savedmodel",
    "textmill_api",
    "tflite_float32",
    "litert_lm_float32",
)

logger = logging.getLogger("bench.generate")


def _hf_config():
    return dict(
        CONFIG,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        initializer_range=INIT_SCALE,
        bos_token_id=STOP_ID,
        eos_token_id=STOP_ID,
    )


def _prompt_lengths(batch: int) -> list[int]:
    """Unequal prompt lengths (begin-of-text included), 4 to 20."""
    return [4 + (row * 7) % 17 for row in range(batch)]


def _new_ids(rows, starts) -> list[list[int]]:
    """Each row's new ids from its `start`, cut after the stop token."""
    new = []
    for row, start in zip(rows, starts, strict=True):
        tokens = list(row[start:])
        if STOP_ID in tokens:
            tokens = tokens[: tokens.index(STOP_ID) + 1]
        new.append(tokens)
    return new


# One-shot workers (a fresh process each; print one JSON line).


def _checkpoint_worker(args) -> dict:
    """Writes the random checkpoint with PyTorch."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**_hf_config()))
    model.save_pretrained(args.hf_dir, safe_serialization=True)
    return {"saved": args.hf_dir}


def _prompts_worker(args) -> dict:
    """Prompt strings and ids (begin-of-text first), unequal lengths."""
    import tensorflow as tf

    from textmill.tokenization.bpe_files import export_hf_bpe
    from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer

    files = _tokenizer_files(args.work_dir)
    # `convert_gpt2` needs the checkpoint's tokenizer files for a preset.
    if not os.path.exists(os.path.join(args.hf_dir, "vocab.json")):
        export_hf_bpe(files, args.hf_dir)
    tokenizer = ByteBPETokenizer(files.vocab_path, files.merges_path)
    eos = files.token_id("<|endoftext|>")
    sentences = [
        "Return the path of the module, or raise an error if the file is "
        "missing from the folder",
        "The river runs to the sea and the sea returns it as rain over the "
        "hills of the north",
        "A decoder reads one token at a time and keeps a cache of the keys "
        "and values it saw",
        "Numbers such as 12 and 345 are split into tokens by the byte pair "
        "encoder before training",
        "When the file is missing the function logs a warning and returns "
        "the default value instead",
        "Each worker process reads its own shard of the data and writes "
        "its results to a new file",
        "The scheduler retries a failed task three times before it gives "
        "up and reports the error",
        "Strings are encoded as UTF-8 bytes before they are split into "
        "words and merged into tokens",
    ]
    batch = max(args.batches)
    prompts, prompt_ids = [], []
    for row, length in enumerate(_prompt_lengths(batch)):
        sentence = sentences[row % len(sentences)]
        ids = tokenizer.tokenize(tf.constant([sentence]))[0].numpy()
        ids = ids[: length - 1].tolist()
        text = tokenizer.detokenize(tf.ragged.constant([ids], tf.int64))
        text = text.numpy()[0].decode("utf-8")
        # The SavedModel tokenizes the text again: keep only prompts whose
        # text gives back the same ids.
        again = tokenizer.tokenize(tf.constant([text]))[0].numpy().tolist()
        if again != ids:
            raise ValueError(f"prompt {text!r} does not round-trip")
        prompts.append(text)
        prompt_ids.append([eos] + ids)
    return {"prompts": prompts, "prompt_ids": prompt_ids, "eos_id": eos}


def _prepare_worker(args) -> dict:
    """Exports the SavedModel and converts one TFLite loop, once.

    In a process of its own per TFLite variant: the conversions' peak
    memory (the int8 one takes gigabytes) is freed before the timed
    workers start.
    """
    import functools

    import keras

    from textmill.serving.sampling.token_id_generation import (
        GENERATE_IDS,
        INPUT_SPECS,
        generate_token_ids,
    )
    from textmill.serving.tflite_conversion import (
        convert_generation_to_tflite,
    )

    files = _tokenizer_files(args.work_dir)
    model = _textmill_model(args)
    path = os.path.join(args.work_dir, "savedmodel")
    if not os.path.isdir(path):
        _export_savedmodel(model, files, args.eos_id, path)
    network_dir = os.path.join(args.work_dir, "network")
    if not os.path.isdir(network_dir):
        network = keras.export.ExportArchive()
        network.track(model)
        network.add_endpoint(
            GENERATE_IDS,
            functools.partial(
                generate_token_ids,
                model,
                bos_id=args.eos_id,
                stop_token_id=STOP_ID,
                max_length=model.backbone.max_sequence_length,
            ),
            INPUT_SPECS,
        )
        network.write_out(network_dir, verbose=False)
    variant = args.tflite_variant
    tflite_path = os.path.join(args.work_dir, f"generate_{variant}.tflite")
    if not os.path.exists(tflite_path):
        with open(tflite_path + ".part", "wb") as f:
            f.write(convert_generation_to_tflite(network_dir, variant))
        os.replace(tflite_path + ".part", tflite_path)
    return {"prepared": tflite_path}


def _litert_vocab_dir(work_dir: str, hf_dir: str) -> str:
    """The learned vocabulary padded to the model's ids (see the module
    doc), as `vocab.json` + `merges.txt` in a folder of its own."""
    folder = os.path.join(work_dir, "litert_vocab")
    if os.path.isdir(folder):
        return folder
    with open(os.path.join(hf_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    taken = set(vocab.values())
    for token_id in range(CONFIG["vocab_size"]):
        if token_id not in taken:
            vocab[f"<|t{token_id}|>"] = token_id
    os.makedirs(folder + ".part", exist_ok=True)
    with open(os.path.join(folder + ".part", "vocab.json"), "w") as f:
        json.dump(vocab, f, ensure_ascii=False)
    shutil.copy(os.path.join(hf_dir, "merges.txt"), folder + ".part")
    os.replace(folder + ".part", folder)
    return folder


def _prepare_litert_worker(args) -> dict:
    """Writes one `.litertlm` bundle (on every run: its conversion's time
    and peak memory are reported) and the tokenizer.json of the checks;
    in a process of its own per variant (its peak memory is the
    conversion's)."""
    import resource
    import time

    from textmill.serving.litert_lm.export import write_litert_lm_bundle
    from textmill.serving.litert_lm.hf_tokenizer import build_hf_tokenizer

    vocab_dir = _litert_vocab_dir(args.work_dir, args.hf_dir)
    tokenizer_json = os.path.join(args.work_dir, "litert_tokenizer.json")
    build_hf_tokenizer(vocab_dir).save(tokenizer_json)
    variant = args.litert_variant
    path = os.path.join(args.work_dir, f"model_{variant}.litertlm")
    start = time.perf_counter()
    written = write_litert_lm_bundle(
        _textmill_model(args),
        vocab_dir,
        path,
        variant,
        prefill_length=LITERT_LM_PREFILL,
        cache_length=CONFIG["n_positions"],
        stop_token_ids=(STOP_ID,),
    )
    return {
        "bundle": path,
        "tokenizer_json": tokenizer_json,
        "bytes": written["bytes"],
        "tflite_bytes": written["tflite_bytes"],
        "seconds": time.perf_counter() - start,
        # Linux: kilobytes.
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        * 1024,
    }


ONE_SHOT = {
    "checkpoint": _checkpoint_worker,
    "prompts": _prompts_worker,
    "prepare": _prepare_worker,
    "prepare_litert": _prepare_litert_worker,
}


# Serving workers: load once, then answer timed cases (bench/harness.py).


def _torch_cases(args) -> tuple[dict, dict]:
    import torch
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(args.hf_dir).eval()
    info = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    cases = {}

    def make(batch, generate_model, extra):
        rows = args.prompt_ids[:batch]
        width = max(len(r) for r in rows)
        # Left padding: the new tokens start at `width` in every row.
        ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
        mask = torch.tensor(
            [[0] * (width - len(r)) + [1] * len(r) for r in rows]
        )

        def run():
            with torch.inference_mode():
                out = generate_model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=args.new_tokens,
                    do_sample=False,
                    pad_token_id=0,
                    **extra,
                )
            return _new_ids(out.tolist(), [width] * batch)

        return run

    for batch in args.batches:
        cases[f"torch_eager/{batch}"] = make(batch, model, {})
    if args.torch_compile:
        try:
            compiled = GPT2LMHeadModel.from_pretrained(args.hf_dir).eval()
            compiled.forward = torch.compile(compiled.forward)
            extra = {"cache_implementation": "static"}
            for batch in args.batches:
                case = make(batch, compiled, extra)
                case()  # compiles now; a failure skips the arm
                cases[f"torch_compile/{batch}"] = case
        except Exception as error:  # noqa: BLE001 - reported, arm skipped
            info["torch_compile_skipped"] = f"{type(error).__name__}: {error}"[
                :300
            ]
    return cases, info


def _hf_tf_cases(args) -> tuple[dict, dict]:
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
    load_pytorch_state_dict_in_tf2_model(
        model, load_file(os.path.join(args.hf_dir, "model.safetensors"))
    )
    xla = tf.function(model.generate, jit_compile=True)
    cases = {}
    for batch in args.batches:
        rows = args.prompt_ids[:batch]
        width = max(len(r) for r in rows)
        ids = tf.constant([[0] * (width - len(r)) + r for r in rows], tf.int32)
        mask = tf.constant(
            [[0] * (width - len(r)) + [1] * len(r) for r in rows], tf.int32
        )
        arms = [("hf_tf_xla", xla)]
        if batch <= args.eager_max_batch:
            arms.append(("hf_tf_eager", model.generate))
        for name, generate in arms:

            def run(
                ids=ids, mask=mask, generate=generate, width=width, batch=batch
            ):
                out = generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=args.new_tokens,
                    do_sample=False,
                    pad_token_id=0,
                )
                return _new_ids(out.numpy().tolist(), [width] * batch)

            cases[f"{name}/{batch}"] = run
    info = {"tensorflow": tf.__version__}
    return cases, info


def _textmill_cases(args) -> tuple[dict, dict]:
    import numpy as np
    import tensorflow as tf

    from textmill.serving.sampling import CausalLMGenerator, SamplerSettings
    from textmill.serving.tflite_generation import TFLiteGenerator
    from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer

    files = _tokenizer_files(args.work_dir)
    tokenizer = ByteBPETokenizer(files.vocab_path, files.merges_path)
    model = _textmill_model(args)
    info = {"tensorflow": tf.__version__, "bytes": {}}
    cases = {}

    # textmill_api and the detokenized reference of the SavedModel.
    generator = CausalLMGenerator(model)
    settings = SamplerSettings(
        max_new_tokens=args.new_tokens, stop_token_id=STOP_ID
    )
    api_text = {}
    for batch in args.batches:
        rows = args.prompt_ids[:batch]
        width = max(len(r) for r in rows)
        ids = np.array([r + [0] * (width - len(r)) for r in rows], np.int32)
        mask = np.array(
            [[1] * len(r) + [0] * (width - len(r)) for r in rows], bool
        )

        def run(ids=ids, mask=mask):
            out = generator(ids, mask, settings)
            tokens, kept = out.token_ids.numpy(), out.generated_mask.numpy()
            return [
                row[m].tolist() for row, m in zip(tokens, kept, strict=True)
            ]

        cases[f"textmill_api/{batch}"] = run
        text_ids = [[t for t in r if t != STOP_ID] for r in run()]
        text = tokenizer.detokenize(
            tf.ragged.constant(text_ids, tf.int64, ragged_rank=1)
        )
        api_text[batch] = [t.decode("utf-8", "replace") for t in text.numpy()]

    # keras-hub's own generate on the same model (greedy, XLA).
    hub = _textmill_model(args)
    hub.compile(sampler="greedy")
    for batch in args.batches:
        rows = args.prompt_ids[:batch]
        width = max(len(r) for r in rows) + args.new_tokens
        ids = np.array([r + [0] * (width - len(r)) for r in rows], np.int32)
        mask = np.array(
            [[1] * len(r) + [0] * (width - len(r)) for r in rows], bool
        )
        starts = [len(r) for r in rows]

        def run(ids=ids, mask=mask, starts=starts):
            out = hub.generate(
                {"token_ids": ids, "padding_mask": mask}, stop_token_ids=None
            )
            rows = [
                row[start : start + args.new_tokens]
                for row, start in zip(
                    np.asarray(out["token_ids"]).tolist(), starts, strict=True
                )
            ]
            return _new_ids(rows, [0] * len(rows))

        cases[f"keras_hub_generate/{batch}"] = run

    # The SavedModel (strings in and out).
    path = os.path.join(args.work_dir, "savedmodel")
    signature = tf.saved_model.load(path).signatures["generate"]
    for batch in args.batches:
        prompts = tf.constant(args.prompts[:batch])

        def run(prompts=prompts, batch=batch):
            out = signature(
                prompt=prompts, max_new_tokens=tf.constant(args.new_tokens)
            )
            texts = [
                t.decode("utf-8", "replace") for t in out["completion"].numpy()
            ]
            return {
                "num_new_tokens": out["num_new_tokens"].numpy().tolist(),
                "same_text_as_api": [
                    a == b for a, b in zip(texts, api_text[batch], strict=True)
                ],
            }

        cases[f"textmill_savedmodel/{batch}"] = run

    # TFLite: the whole greedy loop (float32 and int8 weights).
    for variant in ("float32", "int8"):
        tflite_path = os.path.join(args.work_dir, f"generate_{variant}.tflite")
        info["bytes"][variant] = os.path.getsize(tflite_path)
        runner = TFLiteGenerator(
            tflite_path,
            files.vocab_path,
            files.merges_path,
            stop_token_id=STOP_ID,
        )
        for batch in args.batches:
            prompt = [r[1:] for r in args.prompt_ids[:batch]]  # adds BOS

            def run(prompt=prompt, runner=runner):
                return runner.generate_ids(prompt, args.new_tokens)[0]

            cases[f"tflite_{variant}/{batch}"] = run
    return cases, info


def _litert_lm_cases(args) -> tuple[dict, dict]:
    """Batch 1 on each bundle, one engine per bundle (LiteRT-LM venv)."""
    import contextlib
    import importlib.metadata

    from textmill.serving.litert_lm import runtime_worker

    engines = contextlib.ExitStack()  # open while the worker serves
    sampler = runtime_worker.sampler_config()  # greedy
    stats = {}
    cases = {}
    for variant, prepared in args.litert_bundles.items():
        engine = engines.enter_context(
            runtime_worker.open_engine(prepared["bundle"], None, None)
        )
        stats[variant] = []

        def run(engine=engine, variant=variant):
            reply = runtime_worker.complete(
                engine, args.prompts[0], args.new_tokens, sampler
            )
            stats[variant].append(reply["benchmark"])
            return reply

        cases[f"litert_lm_{variant}/1"] = run
    cases[LITERT_LM_STATS] = lambda: stats
    info = {
        "litert_lm_api": importlib.metadata.version("litert-lm-api"),
        "bundles": args.litert_bundles,
    }
    return cases, info


SERVERS = {
    "textmill": _textmill_cases,
    "hf_tf": _hf_tf_cases,
    "torch": _torch_cases,
    "litert_lm": _litert_lm_cases,
}


def _textmill_model(args):
    import keras_hub

    from textmill.trainer.convert.gpt2 import convert_gpt2

    preset = os.path.join(args.work_dir, "preset")
    if not os.path.isdir(preset):
        convert_gpt2(args.hf_dir, preset)
    return keras_hub.models.GPT2CausalLM.from_preset(preset, preprocessor=None)


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


def _litert_python() -> str | None:
    """The LiteRT-LM venv's Python, or None (with a message)."""
    from textmill.serving.litert_lm.environment import (
        SETUP_HINT,
        find_litert_venv,
    )

    venv = find_litert_venv()
    if venv is None:
        logger.warning("No LiteRT-LM venv: skipping LiteRT-LM (%s)", SETUP_HINT)
        return None
    return os.path.join(venv, "bin", "python")


def _has_torch(python: str) -> bool:
    if not os.path.exists(python):
        return False
    check = subprocess.run(
        [python, "-c", "import torch, transformers"], capture_output=True
    )
    return check.returncode == 0


# The driver.


def _one_shot(name: str, args, python: str = sys.executable) -> dict:
    """Runs a one-shot worker in a fresh process; its JSON result."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [
            python,
            __file__,
            "--one-shot",
            name,
            "--payload",
            json.dumps(vars(args)),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _start(group: str, args, python: str) -> harness.Arm:
    env = {"PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if group == "hf_tf":
        env["TF_USE_LEGACY_KERAS"] = "1"
    logger.info("Starting %s (loads, exports and converts first)", group)
    return harness.Arm(
        group,
        [
            python,
            __file__,
            "--serve",
            group,
            "--payload",
            json.dumps(vars(args)),
        ],
        env=env,
    )


def _check(runs: dict, batches: list[int]) -> dict:
    """Per arm and batch: rows equal to PyTorch's (or agreement)."""
    reference = runs["torch_eager"]
    checks = {}
    for name, cases in runs.items():
        if name.startswith("litert_lm"):
            continue  # text, not ids: see `_check_litert_lm`
        checks[name] = {}
        for batch in batches:
            case = str(batch)
            if case not in cases:
                continue
            expected = reference[case]["output"]
            got = cases[case]["output"]
            if name == "textmill_savedmodel":
                same = got["same_text_as_api"]
                checks[name][case] = {
                    "rows_equal": sum(same),
                    "rows": len(same),
                    "compared_with": "textmill_api's tokens, detokenized",
                }
                continue
            rows_equal = sum(a == b for a, b in zip(got, expected, strict=True))
            equal_tokens = sum(
                x == y
                for a, b in zip(got, expected, strict=True)
                for x, y in zip(a, b, strict=False)
            )
            checks[name][case] = {
                "rows_equal": rows_equal,
                "rows": len(expected),
                "token_agreement": equal_tokens
                / max(sum(len(b) for b in expected), 1),
                "compared_with": "torch_eager",
            }
    return checks


def _check_litert_lm(runs: dict, info: dict) -> dict:
    """Batch 1 of each bundle against PyTorch's tokens, through text."""
    from tokenizers import Tokenizer

    from textmill.serving.litert_lm.parity import greedy_parity

    checks = {}
    for variant, prepared in info["bundles"].items():
        name = f"litert_lm_{variant}"
        if "1" not in runs.get(name, {}):
            continue
        parity = greedy_parity(
            [runs[name]["1"]["output"]],
            [runs["torch_eager"]["1"]["output"][0]],
            (STOP_ID,),
            Tokenizer.from_file(prepared["tokenizer_json"]),
        )
        checks[name] = {
            "1": {
                "rows_equal": parity["identical"],
                "rows": parity["prompts"],
                "token_agreement": parity["token_agreement"],
                "compared_with": "torch_eager's tokens, through their text",
            }
        }
    return checks


def _litert_lm_summary(info: dict, repeats: int) -> dict:
    """Per bundle: its sizes, conversion cost, and the runtime's own
    prefill and decode tokens/s (medians of the timed calls)."""
    summary = {}
    for variant, prepared in info["bundles"].items():
        timed = info["runtime_benchmark"][variant][-repeats:]
        summary[variant] = {
            **{k: v for k, v in prepared.items() if k not in ("bundle",)},
            **{
                key: harness.summary([b[key] for b in timed])["median"]
                for key in ("prefill_tokens_per_s", "decode_tokens_per_s")
            },
            "prefill_tokens": timed[0]["prefill_tokens"],
        }
    return summary


def _new_token_count(runs: dict, name: str, case: str) -> int:
    output = runs[name][case]["output"]
    if name.startswith("litert_lm"):
        return output["benchmark"]["decode_tokens"]
    if name == "textmill_savedmodel":
        return sum(output["num_new_tokens"])
    return sum(len(row) for row in output)


def _markdown(results: dict) -> str:
    batches = [str(b) for b in results["batches"]]
    rates = results["tokens_per_s"]
    checks = results["checks"]
    best = results["best_float32_peer"]
    lines = [
        "# Greedy generation benchmark",
        "",
        "Written by `python bench/generate/run.py "
        + " ".join(results["argv"])
        + "`.",
        "",
        f"Model: {json.dumps(CONFIG)} (DistilGPT2's shape), random weights "
        f"(init std {INIT_SCALE}) shared by every arm, float32 (the int8 "
        f"row: TFLite dynamic-range int8 weights). Prompts of unequal "
        f"lengths in each batch ({', '.join(map(str, _prompt_lengths(8)))}"
        f", ... tokens), {results['new_tokens']} new greedy tokens per row. "
        "Tokens per second = new tokens of the batch / wall time of one "
        "`generate` call.",
        "",
        *harness.method_lines(
            results["repeats"],
            1,
            results["machine_before"],
            results["machine_after"],
        ),
        "",
        "| arm | "
        + " | ".join(f"batch {b} tok/s" for b in batches)
        + " | "
        + " | ".join(f"b{b} vs best float32 peer" for b in batches)
        + " | rows equal to PyTorch (all batches) |",
        "|---" * (2 + 2 * len(batches)) + "|",
    ]
    for name, per_batch in rates.items():
        cells = [
            harness.spread_text(per_batch[b]) if b in per_batch else "n/a"
            for b in batches
        ]
        for b in batches:
            if b in per_batch and best.get(b):
                cells.append(
                    f"{harness.ratio(per_batch[b], rates[best[b]][b]):.2f}"
                )
            else:
                cells.append("n/a")
        check = checks.get(name, {})
        equal = sum(c["rows_equal"] for c in check.values())
        rows = sum(c["rows"] for c in check.values())
        text = f"{equal}/{rows}"
        if name in ("tflite_int8", "litert_lm_int8"):
            agreement = [c["token_agreement"] for c in check.values()]
            text += (
                f" (token agreement {min(agreement):.2f}-{max(agreement):.2f})"
            )
        elif name == "textmill_savedmodel":
            text += " (text equal to textmill_api's)"
        elif name == "litert_lm_float32":
            text += " (compared through text)"
        elif name == "torch_eager":
            text = "reference"
        lines.append(f"| {name} | " + " | ".join(cells + [text]) + " |")
    lines += [
        "",
        "Best float32 peer per batch (highest median; keras-hub, HF TF with "
        "and without XLA, PyTorch eager and compiled): "
        + ", ".join(f"batch {b}: {best[b]}" for b in batches if best.get(b))
        + ".",
        "",
        "Targets (textmill's best float32 arm, SavedModel or Python API, "
        "against the best float32 peer): "
        + "; ".join(results["targets"])
        + ".",
        "",
        "TFLite files: "
        + ", ".join(
            f"{v} {n / 2**20:.1f} MB"
            for v, n in results["tflite_bytes"].items()
        )
        + ".",
    ]
    if results["litert_lm"]:
        lines += [
            "",
            "LiteRT-LM bundles (batch 1; the runtime's own prefill and "
            "decode tokens/s, medians of the timed calls; conversion by "
            "`write_litert_lm_bundle` in a process of its own): "
            + "; ".join(
                f"{v} {s['bytes'] / 2**20:.1f} MB (TFLite model "
                f"{s['tflite_bytes'] / 2**20:.1f} MB), prefill of "
                f"{s['prefill_tokens']} tokens {s['prefill_tokens_per_s']:.1f}"
                f" tok/s, decode {s['decode_tokens_per_s']:.1f} tok/s, "
                f"converted in {s['seconds']:.0f} s at a peak of "
                f"{s['peak_rss_bytes'] / 2**30:.2f} GiB"
                for v, s in results["litert_lm"].items()
            )
            + ".",
        ]
    if results["skipped"]:
        lines += ["", "Skipped: " + json.dumps(results["skipped"])]
    if results["note"]:
        lines += ["", "Note: " + results["note"]]
    return "\n".join(lines) + "\n"


def _targets(rates: dict, best: dict) -> list[str]:
    goals = {"1": 1.1, "8": 2.0}
    text = []
    for batch, peer in best.items():
        ours = max(
            (
                n
                for n in ("textmill_savedmodel", "textmill_api")
                if batch in rates.get(n, {})
            ),
            key=lambda n: rates[n][batch]["median"],
        )
        r = harness.ratio(rates[ours][batch], rates[peer][batch])
        goal = goals.get(batch)
        verdict = (
            "reported" if goal is None else ("met" if r >= goal else "NOT met")
        )
        want = "" if goal is None else f" (target >= {goal})"
        text.append(f"batch {batch}: {ours} {r:.2f}x {peer}{want}: {verdict}")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one-shot", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--payload", help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--torch-compile",
        action="store_true",
        help="add the torch.compile arm (off by default: on 2 shared cores "
        "its compilation did not finish in 7 minutes)",
    )
    parser.add_argument(
        "--eager-max-batch",
        type=int,
        default=8,
        help="largest batch of the hf_tf_eager arm (the slowest arm by "
        "far; at larger batches it is left out to save time)",
    )
    parser.add_argument("--torch-python", help="Python with torch")
    parser.add_argument("--work-dir", help="keep intermediate files here")
    parser.add_argument("--out-dir", default=HERE)
    parser.add_argument(
        "--note",
        default="",
        help="a sentence for results.md about this run (e.g. where its "
        "files came from)",
    )
    parser.add_argument(
        "--from-raw",
        help="write the results again from a run's raw_runs.json",
    )
    args = parser.parse_args()
    if args.from_raw:
        with open(args.from_raw) as f:
            raw = json.load(f)
        _report(args, raw["runs"], raw["infos"], raw["before"])
        return
    if args.one_shot or args.serve:
        payload = argparse.Namespace(**json.loads(args.payload))
        if args.one_shot:
            print(json.dumps(ONE_SHOT[args.one_shot](payload)))
        else:
            harness.serve(*SERVERS[args.serve](payload))
        return

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    before = harness.machine_state()
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_generate_")
    os.makedirs(work_dir, exist_ok=True)
    torch_python = _torch_python(args.torch_python)
    if torch_python is None:
        raise SystemExit(
            "bench/generate needs PyTorch (the reference tokens): pass "
            f"--torch-python, or let it create {TORCH_VENV} with python3.11."
        )
    base = argparse.Namespace(
        batches=args.batches,
        new_tokens=args.new_tokens,
        torch_compile=args.torch_compile,
        eager_max_batch=args.eager_max_batch,
        work_dir=work_dir,
        hf_dir=os.path.join(work_dir, "hf"),
    )
    if not os.path.isdir(base.hf_dir):
        _one_shot("checkpoint", base, torch_python)
    base = argparse.Namespace(**vars(base), **_one_shot("prompts", base))
    for variant in ("float32", "int8"):
        logger.info("Exporting and converting (TFLite %s)", variant)
        _one_shot(
            "prepare", argparse.Namespace(**vars(base), tflite_variant=variant)
        )
    pythons = {"torch": torch_python, "litert_lm": _litert_python()}
    base.litert_bundles = {}
    if pythons["litert_lm"] is not None and 1 in args.batches:
        for variant in ("float32", "int8"):
            logger.info("Converting and packing (LiteRT-LM %s)", variant)
            base.litert_bundles[variant] = _one_shot(
                "prepare_litert",
                argparse.Namespace(**vars(base), litert_variant=variant),
            )
    workers = {}
    try:
        for group in GROUPS:
            if group == "litert_lm" and not base.litert_bundles:
                continue
            python = pythons.get(group) or sys.executable
            workers[group] = _start(group, base, python)
        arms = [
            workers[group].view(name)
            for group, names in GROUPS.items()
            for name in names
        ]
        arms = [arm for arm in arms if arm.info["cases"]]
        runs = harness.interleave(
            arms, [str(b) for b in args.batches], args.repeats, log=logger.info
        )
        infos = {group: w.info["info"] for group, w in workers.items()}
        if "litert_lm" in workers:
            infos["litert_lm"]["runtime_benchmark"] = workers["litert_lm"].call(
                LITERT_LM_STATS
            )["output"]
    finally:
        for worker in workers.values():
            worker.close()
    # The raw timings and outputs, kept in the work directory: `--from-raw`
    # writes the results again from them.
    with open(os.path.join(work_dir, "raw_runs.json"), "w") as f:
        json.dump({"runs": runs, "infos": infos, "before": before}, f)
    _report(args, runs, infos, before)


def _run_argv() -> list[str]:
    """This run's flags, without `--from-raw PATH`."""
    argv = sys.argv[1:]
    if "--from-raw" in argv:
        at = argv.index("--from-raw")
        argv = argv[:at] + argv[at + 2 :]
    return argv


def _report(args, runs: dict, infos: dict, before: dict) -> None:
    """Checks the tokens, computes the statistics, writes the results."""
    skipped = {}
    if not args.torch_compile:
        skipped["torch_compile"] = (
            "not run: pass --torch-compile (its compilation did not finish "
            "in 7 minutes on 2 shared cores)"
        )
    large = [b for b in args.batches if b > args.eager_max_batch]
    if large:
        skipped["hf_tf_eager"] = (
            f"batches {large} left out (--eager-max-batch "
            f"{args.eager_max_batch}): the slowest arm by far"
        )
    if "litert_lm" not in infos:
        skipped["litert_lm"] = (
            "not run: no LiteRT-LM venv (make setup), or batch 1 not asked"
        )
    if "torch_compile_skipped" in infos["torch"]:
        skipped["torch_compile"] = infos["torch"]["torch_compile_skipped"]
    runs = {name: cases for name, cases in runs.items() if cases}
    lite = "litert_lm" in infos
    rates = {
        name: {
            case: harness.rate_summary(
                record["wall_s"], _new_token_count(runs, name, case)
            )
            for case, record in cases.items()
        }
        for name, cases in runs.items()
    }
    best = {}
    for batch in map(str, args.batches):
        peers = [p for p in FLOAT32_PEERS if batch in rates.get(p, {})]
        best[batch] = max(peers, key=lambda p: rates[p][batch]["median"])
    results = {
        "argv": _run_argv(),
        "config": CONFIG,
        "init_scale": INIT_SCALE,
        "batches": args.batches,
        "prompt_lengths": _prompt_lengths(max(args.batches)),
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        "machine_before": before,
        "machine_after": harness.machine_state(),
        "workers": infos,
        "tokens_per_s": rates,
        "best_float32_peer": best,
        "targets": _targets(rates, best),
        "checks": {
            **_check(runs, args.batches),
            **(_check_litert_lm(runs, infos["litert_lm"]) if lite else {}),
        },
        "litert_lm": (
            _litert_lm_summary(infos["litert_lm"], args.repeats) if lite else {}
        ),
        "tflite_bytes": infos["textmill"]["bytes"],
        "skipped": skipped,
        "note": args.note,
        "samples": {
            name: {case: r["wall_s"] for case, r in cases.items()}
            for name, cases in runs.items()
        },
    }
    markdown = _markdown(results)
    harness.write_results(args.out_dir, results, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
