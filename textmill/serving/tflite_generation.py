"""Greedy text generation with a TFLite model of the whole decoding loop.

The `.tflite` file (see `tflite_conversion.convert_generation_to_tflite`)
holds the network, its key-value cache and the greedy loop, on token ids:
the byte-level BPE tokenizer does not convert (its pre-split is a
tensorflow-text op outside TF Select, and its tables are read from files,
which a flatbuffer cannot carry), so its files travel beside the model and
this runner tokenizes in Python, as an app would in its own code.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf

from textmill.serving.sampling.token_id_generation import NO_TOKEN
from textmill.serving.signatures import GENERATE_IDS
from textmill.serving.tflite_conversion import convert_generation_to_tflite
from textmill.tokenization.bpe_files import MERGES_FILENAME, VOCAB_FILENAME
from textmill.tokenization.byte_bpe_tokenizer import ByteBPETokenizer

END_OF_TEXT = "<|endoftext|>"
# Prompts of the greedy parity check between the TFLite variants and the
# SavedModel they come from.
PARITY_PROMPTS = (
    "The",
    "Return the path of the",
    "If the file does not exist,",
    "This module provides",
)
PARITY_NEW_TOKENS = 16


def generation_filename(variant: str) -> str:
    return f"generate_{variant}.tflite"


def has_generation_signature(network_dir: str) -> bool:
    """Whether a SavedModel has the `generate_ids` signature.

    Args:
        network_dir: the SavedModel directory.
    """
    return GENERATE_IDS in tf.saved_model.load(network_dir).signatures


def export_generation_tflite(
    network_dir: str,
    tokenizer_dir: str,
    out_dir: str,
    variants: list[str],
) -> dict:
    """Writes the TFLite generation variants and their tokenizer files.

    Each variant's greedy tokens are compared with the SavedModel's
    `generate_ids` signature on `PARITY_PROMPTS`.

    Args:
        network_dir: a SavedModel with a `generate_ids` signature.
        tokenizer_dir: the folder with `vocab.txt` and `merges.txt`.
        out_dir: where `generate_<variant>.tflite` and the tokenizer files
            go.
        variants: TFLite variants ("float32", "int8", "float16").

    Returns:
        The `generation` section of the TFLite metadata: signature,
        tokenizer files, and per variant its file, size and parity
        (`identical`: prompts whose tokens all equal the SavedModel's;
        `token_agreement`: the share of equal tokens).
    """
    for name in (VOCAB_FILENAME, MERGES_FILENAME):
        tf.io.gfile.copy(
            os.path.join(tokenizer_dir, name),
            os.path.join(out_dir, name),
            overwrite=True,
        )
    tokenizer = ByteBPETokenizer(
        os.path.join(out_dir, VOCAB_FILENAME),
        os.path.join(out_dir, MERGES_FILENAME),
    )
    prompt_ids = tokenizer.tokenize(tf.constant(PARITY_PROMPTS))
    loaded = tf.saved_model.load(network_dir)
    reference = loaded.signatures[GENERATE_IDS](
        prompt_ids=tf.cast(prompt_ids.to_tensor(0), tf.int32),
        prompt_lengths=tf.cast(prompt_ids.row_lengths(), tf.int32),
        max_new_tokens=tf.constant(PARITY_NEW_TOKENS),
    )["new_token_ids"].numpy()
    section = {
        "signature": GENERATE_IDS,
        "inputs": {
            "prompt_ids": "int32 [batch, width], right-padded, no "
            "begin-of-text token",
            "prompt_lengths": "int32 [batch]",
            "max_new_tokens": "int32 []",
        },
        "outputs": ["new_token_ids", "token_scores", "num_new_tokens"],
        "tokenizer": {"vocab": VOCAB_FILENAME, "merges": MERGES_FILENAME},
        "variants": {},
    }
    for variant in variants:
        flatbuffer = convert_generation_to_tflite(network_dir, variant)
        filename = generation_filename(variant)
        path = os.path.join(out_dir, filename)
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(flatbuffer)
        got, _ = TFLiteGenerator(path).generate_ids(
            prompt_ids.to_list(), PARITY_NEW_TOKENS
        )
        expected = [[t for t in row if t != NO_TOKEN] for row in reference]
        same = sum(
            a == b
            for row, want in zip(got, expected, strict=True)
            for a, b in zip(row, want, strict=False)
        )
        parity = {
            "prompts": len(PARITY_PROMPTS),
            "identical": sum(
                g == e for g, e in zip(got, expected, strict=True)
            ),
            "token_agreement": same / max(sum(map(len, expected)), 1),
        }
        section["variants"][variant] = {
            "file": filename,
            "bytes": len(flatbuffer),
            "parity": parity,
        }
        logging.info(
            "TFLite generation %s: %d bytes, %d/%d prompts identical to "
            "the SavedModel, token agreement %.3f",
            variant,
            len(flatbuffer),
            parity["identical"],
            parity["prompts"],
            parity["token_agreement"],
        )
    return section


class TFLiteGenerator:
    """Runs a generation `.tflite` model on the TFLite interpreter.

    Args:
        model_path: the `.tflite` file with a `generate_ids` signature.
        vocab_path: the tokenizer's `vocab.txt`; defaults to the one beside
            the model.
        merges_path: the tokenizer's `merges.txt`; defaults to the one
            beside the model.
        stop_token_id: the token that ends a completion (dropped from the
            text); defaults to the id of `<|endoftext|>`.
        num_threads: interpreter threads (None: the interpreter's default).

    Example:

    >>> generator = TFLiteGenerator("tflite/generate_float32.tflite")
    >>> generator.generate(["The river"], max_new_tokens=16)
    ['...']
    """

    def __init__(
        self,
        model_path: str,
        vocab_path: str | None = None,
        merges_path: str | None = None,
        stop_token_id: int | None = None,
        num_threads: int | None = None,
    ):
        folder = os.path.dirname(model_path)
        vocab_path = vocab_path or os.path.join(folder, VOCAB_FILENAME)
        merges_path = merges_path or os.path.join(folder, MERGES_FILENAME)
        for name, path in (
            ("model_path", model_path),
            ("vocab_path", vocab_path),
            ("merges_path", merges_path),
        ):
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{name}={path!r} does not exist; pass the TFLite "
                    "generation model and its tokenizer files (vocab.txt, "
                    "merges.txt) from the TFLiteExport output."
                )
        interpreter = tf.lite.Interpreter(
            model_path=model_path, num_threads=num_threads
        )
        if GENERATE_IDS not in interpreter.get_signature_list():
            raise ValueError(
                f"{model_path!r} has no {GENERATE_IDS!r} signature: it is "
                "not a generation model (model_*.tflite files hold only "
                "the network; use generate_*.tflite)."
            )
        self._runner = interpreter.get_signature_runner(GENERATE_IDS)
        self.tokenizer = ByteBPETokenizer(vocab_path, merges_path)
        if stop_token_id is None:
            stop_token_id = int(self.tokenizer.token_to_id(END_OF_TEXT))
        self.stop_token_id = stop_token_id

    def generate_ids(
        self, prompt_ids: list[list[int]], max_new_tokens: int
    ) -> tuple[list[list[int]], list[list[float]]]:
        """Greedy continuation of token-id prompts (no begin-of-text token).

        Args:
            prompt_ids: one list of ids per prompt.
            max_new_tokens: the most tokens to add to each prompt.

        Returns:
            `(new_ids, scores)`: per prompt, the new token ids (the stop
            token included when generated) and their log-probabilities.
        """
        lengths = np.array([len(ids) for ids in prompt_ids], np.int32)
        padded = np.zeros([len(prompt_ids), max(lengths.max(), 1)], np.int32)
        for row, ids in enumerate(prompt_ids):
            padded[row, : len(ids)] = ids
        out = self._runner(
            prompt_ids=padded,
            prompt_lengths=lengths,
            max_new_tokens=np.array(max_new_tokens, np.int32),
        )
        new_ids, scores = [], []
        rows = zip(out["new_token_ids"], out["token_scores"], strict=True)
        for ids, row_scores in rows:
            kept = ids != NO_TOKEN
            new_ids.append(ids[kept].tolist())
            scores.append(row_scores[kept].tolist())
        return new_ids, scores

    def generate(
        self, prompts: list[str], max_new_tokens: int = 32
    ) -> list[str]:
        """Greedy completions (the new text only) of `prompts`.

        Args:
            prompts: the prompt strings.
            max_new_tokens: the most tokens to add to each prompt.

        Returns:
            One completion per prompt, without the stop token; bytes that
            are not UTF-8 are replaced.
        """
        tokens = self.tokenizer.tokenize(tf.constant(prompts, tf.string))
        new_ids, _ = self.generate_ids(tokens.to_list(), max_new_tokens)
        text_ids = [
            [t for t in ids if t != self.stop_token_id] for ids in new_ids
        ]
        texts = self.tokenizer.detokenize(
            tf.ragged.constant(text_ids, dtype=tf.int64, ragged_rank=1)
        )
        return [t.decode("utf-8", errors="replace") for t in texts.numpy()]
