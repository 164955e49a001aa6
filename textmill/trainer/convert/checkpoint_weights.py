"""What the GPT-2 and BART converters share: checkpoint weights taken by
name and shape, layer norms, the checkpoint's tokenizer files, and the
preset written with them."""

import logging
import os
import shutil

import numpy as np

from textmill.tokenization.bpe_files import (
    HF_MERGES_FILENAME,
    HF_VOCAB_FILENAME,
)

logger = logging.getLogger(__name__)


class CheckpointWeights:
    """Checkpoint weights by name, shape-checked; remembers the used ones.

    Args:
        weights: `read_hf_weights`' arrays by PyTorch name.
        hf_dir: the checkpoint directory, for messages.
        model_name: the architecture, for messages ("GPT-2", "BART").
        prefix: what a task head's checkpoint puts before the base model's
            names ("transformer.", "model."), "" for a base model.
        ignored_suffixes: names that are buffers, not weights, and need
            not be used.
    """

    def __init__(
        self,
        weights: dict[str, np.ndarray],
        hf_dir: str,
        model_name: str,
        prefix: str = "",
        ignored_suffixes: tuple[str, ...] = (),
    ):
        self._weights = weights
        self._hf_dir = hf_dir
        self._model_name = model_name
        self._ignored_suffixes = ignored_suffixes
        self.prefix = prefix
        self.used: set[str] = set()

    def take(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The weight `prefix + name`, of `shape` (a leading axis of 1,
        as TF's Conv1D keeps its bias, is dropped).

        Raises:
            ValueError: if it is missing or of another shape.
        """
        full_name = self.prefix + name
        if full_name not in self._weights:
            stem = full_name.rsplit(".", 2)[0]
            similar = sorted(k for k in self._weights if k.startswith(stem))
            raise ValueError(
                f"Weight {full_name!r} is missing from the checkpoint in "
                f"{self._hf_dir!r} (names under {stem!r}: {similar[:8]}); "
                f"is it a {self._model_name} checkpoint?"
            )
        value = self._weights[full_name]
        if value.shape == (1, *shape):
            value = value[0]
        if value.shape != shape:
            raise ValueError(
                f"Checkpoint weight {full_name!r} in {self._hf_dir!r} has "
                f"shape {value.shape}, expected {shape}; config.json does "
                "not match the weights."
            )
        self.used.add(full_name)
        return value

    def get(self, name: str) -> np.ndarray | None:
        """An optional weight by its full name, marked used."""
        if name in self._weights:
            self.used.add(name)
        return self._weights.get(name)

    def warn_unused(self) -> None:
        """Logs the checkpoint's weights that no `take` or `get` used."""
        unused = sorted(
            name
            for name in set(self._weights) - self.used
            if not name.endswith(self._ignored_suffixes)
        )
        if unused:
            logger.warning(
                "%s weights of %s were not converted: %s",
                len(unused),
                self._hf_dir,
                ", ".join(unused[:10]),
            )


def assign(variable, value: np.ndarray) -> None:
    """Assigns a shape-checked weight, reshaped in C order."""
    variable.assign(value.reshape(variable.shape))


def load_layer_norm(layer_norm, weights: CheckpointWeights, name: str) -> None:
    """A PyTorch `LayerNorm` (`.weight`, `.bias`) into a Keras one."""
    (hidden_dim,) = layer_norm.gamma.shape
    assign(layer_norm.gamma, weights.take(name + ".weight", (hidden_dim,)))
    assign(layer_norm.beta, weights.take(name + ".bias", (hidden_dim,)))


def tokenizer_files(hf_dir: str) -> tuple[str, str] | None:
    """The checkpoint's `vocab.json` and `merges.txt`, or None (with a
    warning) when either is missing."""
    vocab_json = os.path.join(hf_dir, HF_VOCAB_FILENAME)
    merges_txt = os.path.join(hf_dir, HF_MERGES_FILENAME)
    if os.path.isfile(vocab_json) and os.path.isfile(merges_txt):
        return vocab_json, merges_txt
    logger.warning(
        "%s has no %s and %s: the preset has no tokenizer; set "
        "tokenizer.init_from to a directory that has them.",
        hf_dir,
        HF_VOCAB_FILENAME,
        HF_MERGES_FILENAME,
    )
    return None


def warn_on_vocabulary_size(vocab_json: str, tokens: list, backbone) -> None:
    """Warns when the tokenizer and the model's embeddings disagree."""
    if len(tokens) != backbone.vocabulary_size:
        logger.warning(
            "%s holds %s tokens but the model has vocab_size=%s; "
            "Transform's imported vocabulary will not match the model.",
            vocab_json,
            len(tokens),
            backbone.vocabulary_size,
        )


def save_preset(task, hf_dir: str, out_dir: str, model_name: str) -> str:
    """Saves `task` as a keras-hub preset in `out_dir`, with the
    checkpoint's `vocab.json` and `merges.txt` beside it (Transform
    imports them from there).

    Returns:
        `out_dir`.
    """
    task.save_to_preset(out_dir)
    copied = []
    for name in (HF_VOCAB_FILENAME, HF_MERGES_FILENAME):
        source = os.path.join(hf_dir, name)
        if os.path.isfile(source):
            shutil.copy(source, os.path.join(out_dir, name))
            copied.append(name)
    backbone = task.backbone
    logger.info(
        "Wrote %s preset %s from %s (%s layers, vocabulary %s; tokenizer "
        "files: %s)",
        model_name,
        out_dir,
        hf_dir,
        backbone.num_layers,
        backbone.vocabulary_size,
        copied or "none",
    )
    return out_dir
