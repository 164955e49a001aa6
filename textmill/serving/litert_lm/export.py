"""Writes `model_<variant>.litertlm` bundles of a causal LM and checks
them in the LiteRT-LM runtime against the SavedModel.

A bundle holds the `prefill_<T>` + `decode` TFLite model (see
`kv_cache_tflite`), the HF `tokenizer.json` of the run's vocabulary, and
the metadata: end-of-text as start and stop token (GPT-2's convention,
the SavedModel's too), greedy sampler defaults, and the token budget.
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile

import keras_hub
import tensorflow as tf

from textmill.serving.litert_lm.bundle import (
    LITERTLM_SUFFIX,
    BundleMetadata,
    pack_bundle,
)
from textmill.serving.litert_lm.environment import (
    SETUP_HINT,
    find_litert_venv,
    require_litert_venv,
)
from textmill.serving.litert_lm.hf_tokenizer import (
    TOKENIZER_JSON,
    build_hf_tokenizer,
)
from textmill.serving.litert_lm.kv_cache_tflite import (
    LITERT_LM_VARIANTS,
    convert_kv_cache_tflite,
    prefill_signature,
)
from textmill.serving.litert_lm.parity import greedy_parity
from textmill.serving.litert_lm.runtime import run_litert_lm
from textmill.serving.sampling.token_id_generation import GENERATE_IDS
from textmill.serving.tflite_generation import (
    END_OF_TEXT,
    PARITY_NEW_TOKENS,
    PARITY_PROMPTS,
)

DEFAULT_PREFILL_LENGTH = 32
# Longer than a prefill chunk under any vocabulary the pipeline learns, so
# the parity check crosses a chunk boundary.
LONG_PROMPT = (
    "The pipeline reads the raw documents, learns a vocabulary from the "
    "train split, trains the model on packed windows, checks it against a "
    "baseline and the last blessed model, converts it for phones, and "
    "pushes every file of the version at once, so that a server never "
    "sees half of a model."
)


def litertlm_filename(variant: str) -> str:
    return f"model_{variant}{LITERTLM_SUFFIX}"


def load_causal_lm(preset_dir: str) -> keras_hub.models.GPT2CausalLM:
    """The GPT-2 causal LM of a keras-hub preset (no preprocessor).

    Args:
        preset_dir: a backbone preset (e.g. the Trainer's Format-Preset).
    """
    backbone = keras_hub.models.GPT2Backbone.from_preset(preset_dir)
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def saved_model_greedy_ids(
    network_dir: str, prompt_ids: list[list[int]], max_new_tokens: int
) -> list[list[int]]:
    """Greedy new token ids from the SavedModel's `generate_ids`.

    Args:
        network_dir: the bare-network SavedModel.
        prompt_ids: per prompt its ids, without the start token.
        max_new_tokens: tokens to generate.

    Returns:
        Per prompt the new ids (the stop token included when generated).
    """
    generate = tf.saved_model.load(network_dir).signatures[GENERATE_IDS]
    ids = tf.ragged.constant(prompt_ids, dtype=tf.int32)
    out = generate(
        prompt_ids=ids.to_tensor(0),
        prompt_lengths=tf.cast(ids.row_lengths(), tf.int32),
        max_new_tokens=tf.constant(max_new_tokens, tf.int32),
    )["new_token_ids"].numpy()
    return [[int(t) for t in row if t >= 0] for row in out]


def _speed(replies: list[dict]) -> dict:
    """Median prefill and decode tokens/s over the replies."""
    return {
        key: statistics.median(r["benchmark"][key] for r in replies)
        for key in ("prefill_tokens_per_s", "decode_tokens_per_s")
    }


def bundle_metadata(
    tokenizer,
    prefill_length: int,
    cache_length: int,
    stop_token_ids: tuple[int, ...] | None = None,
) -> BundleMetadata:
    """GPT-2's bundle metadata: end-of-text starts and stops (unless
    `stop_token_ids` says otherwise), greedy sampler defaults, the cache
    less one prefill chunk as token budget."""
    eos_id = tokenizer.token_to_id(END_OF_TEXT)
    return BundleMetadata(
        start_token_id=eos_id,
        stop_token_ids=tuple(stop_token_ids or (eos_id,)),
        max_num_tokens=cache_length - prefill_length,
    )


def write_litert_lm_bundle(
    model: keras_hub.models.GPT2CausalLM,
    vocab_dir: str,
    out_path: str,
    variant: str = "float32",
    prefill_length: int = DEFAULT_PREFILL_LENGTH,
    cache_length: int | None = None,
    stop_token_ids: tuple[int, ...] | None = None,
) -> dict:
    """Converts, and packs with its tokenizer, one `.litertlm` bundle.

    Args:
        model: a keras-hub GPT-2 family causal LM.
        vocab_dir: a folder with its `vocab.json` and `merges.txt`.
        out_path: the bundle to write (a local path).
        variant: "float32" or "int8".
        prefill_length: tokens per prefill call.
        cache_length: key-value cache positions (None: the model's
            `max_sequence_length`).
        stop_token_ids: ids that end a completion (None: end-of-text).

    Returns:
        `{"bytes", "tflite_bytes", "metadata"}`: the bundle's size, its
        TFLite model's size, and its `BundleMetadata`.

    Raises:
        FileNotFoundError: no LiteRT-LM venv, or missing vocabulary files.
        ValueError: see `convert_kv_cache_tflite`.
    """
    require_litert_venv()
    cache_length = cache_length or model.backbone.max_sequence_length
    tokenizer = build_hf_tokenizer(vocab_dir)
    metadata = bundle_metadata(
        tokenizer, prefill_length, cache_length, stop_token_ids
    )
    flatbuffer = convert_kv_cache_tflite(
        model, prefill_length, cache_length, variant
    )
    with tempfile.TemporaryDirectory() as folder:
        tokenizer_json = os.path.join(folder, TOKENIZER_JSON)
        tokenizer.save(tokenizer_json)
        size = pack_bundle(flatbuffer, tokenizer_json, metadata, out_path)
    return {
        "bytes": size,
        "tflite_bytes": len(flatbuffer),
        "metadata": metadata,
    }


# The largest model bundled. Converting takes about 47 bytes of memory per
# parameter at its peak (DistilGPT2's shape, 82M parameters: 3.9 GB
# float32, 3.0 GB int8), so this bound keeps it under about 7 GB.
MAX_PARAMETERS = 150_000_000


def export_litert_lm(
    preset_dir: str,
    network_dir: str,
    out_dir: str,
    variants: list[str] | tuple[str, ...] = LITERT_LM_VARIANTS,
    prefill_length: int = DEFAULT_PREFILL_LENGTH,
    cache_length: int | None = None,
    prompts: tuple[str, ...] = (*PARITY_PROMPTS, LONG_PROMPT),
    max_new_tokens: int = PARITY_NEW_TOKENS,
) -> dict:
    """Writes `model_<variant>.litertlm` to `out_dir` and checks each in
    the LiteRT-LM runtime against the SavedModel's greedy tokens.

    Without a LiteRT-LM venv (see `environment`) it writes nothing and
    says so in the returned section (`skipped`) and the log.

    Args:
        preset_dir: the keras-hub preset (weights, vocab.json,
            merges.txt).
        network_dir: the bare-network SavedModel (`generate_ids`), the
            parity reference.
        out_dir: where the bundles go (local or gs://).
        variants: bundle variants, of "float32" and "int8".
        prefill_length: tokens per prefill call.
        cache_length: key-value cache positions (None: the model's
            `max_sequence_length`).
        prompts: the parity prompts.
        max_new_tokens: tokens generated per parity prompt.

    Returns:
        The `litert_lm` section of the TFLite metadata: the signatures,
        cache and token budget, start and stop tokens, sampler defaults,
        and per variant its file, size, parity and runtime tokens/s.
    """
    variants = [v for v in variants if v in LITERT_LM_VARIANTS]
    if find_litert_venv() is None:
        reason = f"no LiteRT-LM environment: {SETUP_HINT}"
        logging.warning("LiteRT-LM bundles not built: %s", reason)
        return {"skipped": reason}
    model = load_causal_lm(preset_dir)
    parameters = model.count_params()
    if parameters > MAX_PARAMETERS:
        reason = (
            f"the model has {parameters:,} parameters, more than "
            f"MAX_PARAMETERS={MAX_PARAMETERS:,}: its conversion would take "
            f"about {47 * parameters / 2**30:.0f} GiB of memory (47 bytes "
            "per parameter measured at DistilGPT2's shape); convert it "
            "on a larger machine with convert_kv_cache_tflite"
        )
        logging.warning("LiteRT-LM bundles not built: %s", reason)
        return {"skipped": reason}
    cache_length = cache_length or model.backbone.max_sequence_length
    tokenizer = build_hf_tokenizer(preset_dir)
    metadata = bundle_metadata(tokenizer, prefill_length, cache_length)
    prompt_ids = [tokenizer.encode(p).ids for p in prompts]
    expected = saved_model_greedy_ids(network_dir, prompt_ids, max_new_tokens)
    section = {
        "runtime": "LiteRT-LM (litert-lm-api, CPU)",
        "signatures": [prefill_signature(prefill_length), "decode"],
        "prefill_length": prefill_length,
        "cache_length": cache_length,
        "max_num_tokens": metadata.max_num_tokens,
        "start_token_id": metadata.start_token_id,
        "stop_token_ids": list(metadata.stop_token_ids),
        "sampler": {
            "type": "TOP_P",
            "k": metadata.top_k,
            "p": metadata.top_p,
            "temperature": metadata.temperature,
        },
        "parity_prompt_tokens": [len(ids) for ids in prompt_ids],
        "variants": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        for variant in variants:
            filename = litertlm_filename(variant)
            local = os.path.join(folder, filename)
            written = write_litert_lm_bundle(
                model, preset_dir, local, variant, prefill_length, cache_length
            )
            replies = run_litert_lm(local, list(prompts), max_new_tokens)
            parity = greedy_parity(
                replies, expected, metadata.stop_token_ids, tokenizer
            )
            tf.io.gfile.copy(
                local, os.path.join(out_dir, filename), overwrite=True
            )
            section["variants"][variant] = {
                "file": filename,
                "bytes": written["bytes"],
                "tflite_bytes": written["tflite_bytes"],
                "parity": parity,
                "tokens_per_s": _speed(replies),
            }
            logging.info(
                "LiteRT-LM %s: %d bytes, %d/%d prompts identical to the "
                "SavedModel, token agreement %.3f",
                variant,
                written["bytes"],
                parity["identical"],
                parity["prompts"],
                parity["token_agreement"],
            )
    return section
