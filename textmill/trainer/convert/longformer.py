"""Hugging Face Longformer / RoBERTa checkpoints -> textmill Longformer presets.

`convert_longformer` reads a `LongformerModel` / `LongformerForMaskedLM`
checkpoint directory (`allenai/longformer-base-4096` layout) and writes a
keras-hub preset directory; `convert_roberta_to_longformer` turns a RoBERTa
checkpoint into a Longformer the way the paper does (positions copied
repeatedly, global projections initialised from the local ones). After
`import textmill.trainer.models.longformer`, the preset loads with
`keras_hub.models.Backbone.from_preset(out_dir)` and, when the checkpoint had
an MLM head, with `LongformerMaskedLM.from_preset(out_dir)`.
"""

import logging
import os
import shutil

import numpy as np

from textmill.trainer.convert.hf_checkpoint import (
    read_hf_config,
    read_hf_weights,
)
from textmill.trainer.models.longformer import (
    LongformerBackbone,
    LongformerMaskedLM,
)

logger = logging.getLogger(__name__)

# Tokenizer files copied into `<preset>/assets/tokenizer/`.
TOKENIZER_ASSETS = ("vocab.json", "merges.txt")
TOKENIZER_ASSET_DIR = os.path.join("assets", "tokenizer")

_ATTENTION_PROJECTIONS = {
    "query": "query_dense",
    "key": "key_dense",
    "value": "value_dense",
}
_GLOBAL_PROJECTIONS = {
    "query_global": "global_query_dense",
    "key_global": "global_key_dense",
    "value_global": "global_value_dense",
}


def convert_longformer(
    hf_dir: str, out_dir: str, max_global_tokens: int | None = None
) -> str:
    """Converts a Hugging Face Longformer checkpoint into a keras-hub preset.

    Args:
        hf_dir: directory with `config.json` and `model.safetensors`,
            `tf_model.h5` or `pytorch_model.bin` (see `hf_checkpoint`).
        out_dir: preset directory to write (created if needed).
        max_global_tokens: `None` (the default: any number of global
            tokens, as Hugging Face) or a static bound on global tokens per
            sequence for the converted backbone (see `LongformerBackbone`).

    Returns:
        `out_dir`.

    Raises:
        ValueError: if the checkpoint is not a Longformer, uses an
            unsupported option, or a weight is missing or mis-shaped.
    """
    config = read_hf_config(hf_dir)
    _check_model_type(config, "longformer", hf_dir)
    weights = read_hf_weights(hf_dir)
    backbone = LongformerBackbone(
        **_backbone_kwargs(config, hf_dir),
        attention_window=config["attention_window"],
        max_global_tokens=max_global_tokens,
    )
    prefix = _base_prefix(weights, "longformer")
    _load_backbone(backbone, weights, prefix, global_from_local=False)
    return _save_preset(backbone, weights, hf_dir, out_dir)


def convert_roberta_to_longformer(
    hf_dir: str,
    out_dir: str,
    max_positions: int = 4096,
    attention_window: int = 512,
    max_global_tokens: int | None = None,
) -> str:
    """Turns a Hugging Face RoBERTa checkpoint into a Longformer preset.

    As in Beltagy et al. (2020, section 5): the position table is extended to
    `max_positions` by copying RoBERTa's learned positions repeatedly, and
    each layer's global query/key/value projections start as copies of its
    local ones. Everything else (and an MLM head, when present) is reused.

    Args:
        hf_dir: RoBERTa checkpoint directory (`RobertaModel` or
            `RobertaForMaskedLM`).
        out_dir: preset directory to write.
        max_positions: longest sequence of the new model.
        attention_window: even two-sided local attention window.
        max_global_tokens: `None` (any number of global tokens) or a static
            bound on global tokens per sequence.

    Returns:
        `out_dir`.

    Raises:
        ValueError: if the checkpoint is not a RoBERTa model or a weight is
            missing or mis-shaped.
    """
    config = read_hf_config(hf_dir)
    _check_model_type(config, "roberta", hf_dir)
    weights = read_hf_weights(hf_dir)
    prefix = _base_prefix(weights, "roberta")
    kwargs = _backbone_kwargs(config, hf_dir)
    pad = kwargs["pad_token_id"]
    name = prefix + "embeddings.position_embeddings.weight"
    weights[name] = extend_positions(
        _take(weights, name), max_positions, pad + 1
    )
    kwargs["max_sequence_length"] = max_positions
    backbone = LongformerBackbone(
        **kwargs,
        attention_window=attention_window,
        max_global_tokens=max_global_tokens,
    )
    _load_backbone(backbone, weights, prefix, global_from_local=True)
    return _save_preset(backbone, weights, hf_dir, out_dir)


def extend_positions(
    table: np.ndarray, max_positions: int, offset: int
) -> np.ndarray:
    """Extends a RoBERTa position table by repeating its learned rows.

    Args:
        table: `(offset + n, hidden)`; the first `offset` rows are the
            reserved padding rows, the other `n` the learned positions.
        max_positions: number of learned positions wanted.
        offset: reserved rows (`pad_token_id + 1`).

    Returns:
        `(offset + max_positions, hidden)`: the reserved rows, then the
        learned rows repeated (and cut) to `max_positions`.
    """
    learned = table[offset:]
    repeats = -(-max_positions // len(learned))
    tiled = np.tile(learned, (repeats, 1))[:max_positions]
    return np.concatenate([table[:offset], tiled], axis=0)


def _check_model_type(config: dict, expected: str, hf_dir: str) -> None:
    model_type = config.get("model_type")
    if model_type != expected:
        raise ValueError(
            f"{hf_dir!r} holds a {model_type!r} checkpoint (config.json "
            f"`model_type`), expected {expected!r}."
        )


def _backbone_kwargs(config: dict, hf_dir: str) -> dict:
    """Backbone arguments shared by Longformer and RoBERTa configs."""
    activation = config.get("hidden_act", "gelu")
    if activation != "gelu":
        raise ValueError(
            f"{hf_dir}/config.json has hidden_act={activation!r}; only "
            "'gelu' (exact) is supported."
        )
    if config.get("type_vocab_size", 1) != 1:
        logger.info(
            "%s has type_vocab_size=%s; only token type 0 is kept.",
            hf_dir,
            config["type_vocab_size"],
        )
    pad = config.get("pad_token_id", 1)
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": config["num_attention_heads"],
        "hidden_dim": config["hidden_size"],
        "intermediate_dim": config["intermediate_size"],
        "dropout": config.get("hidden_dropout_prob", 0.1),
        "max_sequence_length": config["max_position_embeddings"] - pad - 1,
        "pad_token_id": pad,
        "layer_norm_epsilon": config.get("layer_norm_eps", 1e-5),
    }


def _base_prefix(weights: dict, base_model: str) -> str:
    """`'longformer.'` for task checkpoints, `''` for bare base models."""
    prefix = base_model + "."
    return prefix if any(k.startswith(prefix) for k in weights) else ""


def _take(weights: dict, name: str) -> np.ndarray:
    if name not in weights:
        stem = name.rsplit(".", 2)[0]
        similar = sorted(k for k in weights if k.startswith(stem))[:8]
        raise ValueError(
            f"Weight {name!r} is missing from the checkpoint "
            f"(names under {stem!r}: {similar})."
        )
    return weights[name]


def _assign(variable, value: np.ndarray, source: str) -> None:
    if tuple(variable.shape) != value.shape:
        raise ValueError(
            f"Checkpoint weight {source!r} has shape {value.shape} but "
            f"{variable.path} expects {tuple(variable.shape)}; the config "
            "does not match the weights."
        )
    variable.assign(value)


def _load_dense(dense, weights: dict, name: str) -> None:
    _assign(dense.kernel, _take(weights, name + ".weight").T, name + ".weight")
    _assign(dense.bias, _take(weights, name + ".bias"), name + ".bias")


def load_classifier_head(classifier, weights: dict) -> None:
    """Loads HF's sequence-classification head (`classifier.dense`,
    `classifier.out_proj`) into a `LongformerClassifier`.

    Args:
        classifier: a `LongformerClassifier` with as many labels as the
            checkpoint's head.
        weights: the checkpoint's weights (`read_hf_weights`).

    Raises:
        ValueError: a weight is missing or its shape differs.
    """
    _load_dense(classifier.pooled_dense, weights, "classifier.dense")
    _load_dense(classifier.output_dense, weights, "classifier.out_proj")


def _load_layer_norm(layer_norm, weights: dict, name: str) -> None:
    _assign(layer_norm.gamma, _take(weights, name + ".weight"), name)
    _assign(layer_norm.beta, _take(weights, name + ".bias"), name)


def _load_backbone(
    backbone: LongformerBackbone,
    weights: dict,
    prefix: str,
    global_from_local: bool,
) -> None:
    """Assigns RoBERTa/Longformer-named weights to `backbone`."""
    embeddings = backbone.embeddings
    name = prefix + "embeddings."
    _assign(
        embeddings.token_embedding.embeddings,
        _take(weights, name + "word_embeddings.weight"),
        name + "word_embeddings.weight",
    )
    _assign(
        embeddings.position_embedding.embeddings,
        _take(weights, name + "position_embeddings.weight"),
        name + "position_embeddings.weight",
    )
    _assign(
        embeddings.token_type_embedding,
        _take(weights, name + "token_type_embeddings.weight")[0],
        name + "token_type_embeddings.weight",
    )
    _load_layer_norm(embeddings.layer_norm, weights, name + "LayerNorm")
    global_sources = {
        hf: (hf.replace("_global", "") if global_from_local else hf)
        for hf in _GLOBAL_PROJECTIONS
    }
    for index, layer in enumerate(backbone.transformer_layers):
        name = f"{prefix}encoder.layer.{index}."
        attention = layer.self_attention
        for hf, ours in _ATTENTION_PROJECTIONS.items():
            dense = getattr(attention, ours)
            _load_dense(dense, weights, name + "attention.self." + hf)
        if backbone.max_global_tokens != 0:
            for hf, source in global_sources.items():
                dense = getattr(attention, _GLOBAL_PROJECTIONS[hf])
                _load_dense(dense, weights, name + "attention.self." + source)
        _load_dense(
            attention.output_dense, weights, name + "attention.output.dense"
        )
        _load_layer_norm(
            layer.attention_layer_norm,
            weights,
            name + "attention.output.LayerNorm",
        )
        _load_dense(
            layer.intermediate_dense, weights, name + "intermediate.dense"
        )
        _load_dense(layer.output_dense, weights, name + "output.dense")
        _load_layer_norm(
            layer.output_layer_norm, weights, name + "output.LayerNorm"
        )


def _load_mlm_head(masked_lm: LongformerMaskedLM, weights: dict) -> None:
    """Assigns `lm_head.*` to the masked LM head (decoder tied to tokens)."""
    variables = {v.path: v for v in masked_lm.masked_lm_head.weights}
    sources = {
        "mlm_head/intermediate_dense/kernel": "lm_head.dense.weight",
        "mlm_head/intermediate_dense/bias": "lm_head.dense.bias",
        "mlm_head/intermediate_layer_norm/gamma": "lm_head.layer_norm.weight",
        "mlm_head/intermediate_layer_norm/beta": "lm_head.layer_norm.bias",
        "mlm_head/output_bias": "lm_head.bias",
    }
    for path, name in sources.items():
        value = _take(weights, name)
        _assign(
            variables[path], value.T if path.endswith("kernel") else value, name
        )
    decoder = weights.get("lm_head.decoder.weight")
    tokens = masked_lm.backbone.token_embedding.embeddings
    if decoder is not None and not np.array_equal(decoder, np.asarray(tokens)):
        logger.warning(
            "lm_head.decoder.weight differs from the word embeddings; the "
            "converted head is tied to the word embeddings."
        )


def _save_preset(
    backbone: LongformerBackbone, weights: dict, hf_dir: str, out_dir: str
) -> str:
    """Writes the backbone (and the MLM task if the head exists) + assets."""
    if any(name.startswith("lm_head.") for name in weights):
        masked_lm = LongformerMaskedLM(backbone)
        _load_mlm_head(masked_lm, weights)
        masked_lm.save_to_preset(out_dir)
    else:
        backbone.save_to_preset(out_dir)
    copied = []
    for asset in TOKENIZER_ASSETS:
        source = os.path.join(hf_dir, asset)
        if os.path.isfile(source):
            asset_dir = os.path.join(out_dir, TOKENIZER_ASSET_DIR)
            os.makedirs(asset_dir, exist_ok=True)
            shutil.copy(source, os.path.join(asset_dir, asset))
            copied.append(asset)
    logger.info(
        "Wrote preset %s from %s (tokenizer assets: %s)",
        out_dir,
        hf_dir,
        copied or "none",
    )
    return out_dir
