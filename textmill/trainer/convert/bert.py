"""Hugging Face BERT checkpoints -> textmill BERT presets (keras-hub format).

`convert_bert` reads a `BertForPreTraining`, `BertForNextSentencePrediction`,
`BertForMaskedLM` or `BertModel` checkpoint directory (PyTorch or TF
weights, see `hf_checkpoint`) and writes a keras-hub preset directory with
the backbone (pooler included), the heads the checkpoint has, and its
`vocab.txt` under `assets/tokenizer/`. After `import
textmill.trainer.models.bert`, `keras_hub.models.Backbone.from_preset(out)`
loads the backbone, and `BertPretrainer.from_preset(out)` /
`BertNextSentencePredictor.from_preset(out)` load the heads too.

BERT's NSP head scores class 0 as "B follows A"; textmill's scores class 1
(the `is_next` label), so the converter swaps the two output columns.
"""

import logging
import os
import re
import shutil

import numpy as np

from textmill.trainer.convert.hf_checkpoint import (
    read_hf_config,
    read_hf_weights,
)
from textmill.trainer.models.bert import (
    BertBackbone,
    BertNextSentencePredictor,
    BertPretrainer,
)
from textmill.transform.wordpiece_analyzer import (
    HF_VOCAB_FILENAME,
    PRESET_VOCAB_PATH,
)

logger = logging.getLogger(__name__)

# Hugging Face `hidden_act` -> `BertBackbone.hidden_activation`.
_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
}
# keras-hub's BERT layer norms use this epsilon, as BERT does.
_LAYER_NORM_EPSILON = 1e-12
_POOLER = "pooler.dense"
_NSP = "cls.seq_relationship"
_MLM = "cls.predictions"


def convert_bert(hf_dir: str, out_dir: str) -> str:
    """Converts a Hugging Face BERT checkpoint into a keras-hub preset.

    Args:
        hf_dir: directory with `config.json` and `model.safetensors`,
            `tf_model.h5` or `pytorch_model.bin`; its `vocab.txt`, if any,
            is copied into the preset.
        out_dir: preset directory to write (created if needed).

    Returns:
        `out_dir`.

    Raises:
        ValueError: if the checkpoint is not BERT, uses an unsupported
            option, or a weight is missing or mis-shaped.
    """
    config = read_hf_config(hf_dir)
    if config.get("model_type") != "bert":
        raise ValueError(
            f"{hf_dir!r} holds a {config.get('model_type')!r} checkpoint "
            "(config.json `model_type`), expected 'bert'."
        )
    weights = _pytorch_names(read_hf_weights(hf_dir))
    prefix = "bert." if any(k.startswith("bert.") for k in weights) else ""
    backbone = BertBackbone(**_backbone_kwargs(config, hf_dir))
    if prefix + _POOLER + ".weight" not in weights:
        logger.warning(
            "%s has no pooler (%s); the pooled output and anything built "
            "on it start from random weights.",
            hf_dir,
            prefix + _POOLER,
        )
    has_mlm = _MLM + ".transform.dense.weight" in weights
    has_nsp = _NSP + ".weight" in weights
    if has_mlm:
        model = BertPretrainer(backbone)
        if not has_nsp:
            logger.warning(
                "%s has no NSP head (%s); it starts from random weights.",
                hf_dir,
                _NSP,
            )
    elif has_nsp:
        model = BertNextSentencePredictor(backbone)
    else:
        model = backbone
    sources = _backbone_sources(backbone, prefix, weights)
    if has_mlm:
        sources.update(_mlm_sources())
    if has_nsp:
        sources.update(_nsp_sources())
    _assign_all(model, weights, sources)
    if has_mlm:
        _check_tied_decoder(weights, prefix)
    model.save_to_preset(out_dir)
    vocab = os.path.join(hf_dir, HF_VOCAB_FILENAME)
    if os.path.isfile(vocab):
        os.makedirs(
            os.path.dirname(os.path.join(out_dir, PRESET_VOCAB_PATH)),
            exist_ok=True,
        )
        shutil.copy(vocab, os.path.join(out_dir, PRESET_VOCAB_PATH))
    logger.info(
        "Wrote %s preset %s from %s (vocab.txt %s)",
        type(model).__name__,
        out_dir,
        hf_dir,
        "copied" if os.path.isfile(vocab) else "absent",
    )
    return out_dir


def _pytorch_names(weights: dict) -> dict:
    """Names as PyTorch's `BertForPreTraining` state dict has them.

    The TF classes put the heads under Keras scopes (`nsp___cls`,
    `mlm___cls`), dropped here as Hugging Face drops them; older checkpoints
    name layer norm weights `gamma`/`beta`.
    """
    renamed = {}
    for name, value in weights.items():
        name = re.sub(r"(^|\.)[^.]*___", r"\1", name)
        name = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", name))
        renamed[name] = value
    # Some checkpoints keep the MLM output bias only as the decoder's.
    if _MLM + ".decoder.bias" in renamed:
        renamed.setdefault(_MLM + ".bias", renamed[_MLM + ".decoder.bias"])
    return renamed


def _backbone_kwargs(config: dict, hf_dir: str) -> dict:
    activation = config.get("hidden_act", "gelu")
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"{hf_dir}/config.json has hidden_act={activation!r}; supported: "
            f"{', '.join(_ACTIVATIONS)}."
        )
    epsilon = config.get("layer_norm_eps", _LAYER_NORM_EPSILON)
    if not np.isclose(epsilon, _LAYER_NORM_EPSILON, rtol=1e-3, atol=0):
        raise ValueError(
            f"{hf_dir}/config.json has layer_norm_eps={epsilon}; the BERT "
            f"backbone's layer norms use {_LAYER_NORM_EPSILON} (BERT's)."
        )
    position_type = config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise ValueError(
            f"{hf_dir}/config.json has position_embedding_type="
            f"{position_type!r}; only 'absolute' positions are supported."
        )
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": config["num_attention_heads"],
        "hidden_dim": config["hidden_size"],
        "intermediate_dim": config["intermediate_size"],
        "dropout": config.get("hidden_dropout_prob", 0.1),
        "max_sequence_length": config["max_position_embeddings"],
        "num_segments": config.get("type_vocab_size", 2),
        "hidden_activation": _ACTIVATIONS[activation],
    }


# A source: (checkpoint weight name, how to turn it into the variable's
# value). "matrix": a PyTorch (out, in) matrix, transposed then reshaped to
# the variable (multi-head kernels are (in, heads, head_dim) or (heads,
# head_dim, out)); "vector": reshaped as is; "nsp": transposed with its two
# classes swapped.
Source = tuple[str, str]


def _backbone_sources(
    backbone: BertBackbone, prefix: str, weights: dict
) -> dict[str, Source]:
    """Keras variable path -> source, for the backbone."""
    sources = {
        "token_embedding/embeddings": "embeddings.word_embeddings",
        "position_embedding/embeddings": "embeddings.position_embeddings",
        "segment_embedding/embeddings": "embeddings.token_type_embeddings",
    }
    sources = {
        path: (prefix + name + ".weight", "vector")
        for path, name in sources.items()
    }
    sources.update(
        _layer_norm("embeddings_layer_norm", prefix + "embeddings.LayerNorm")
    )
    for index in range(backbone.num_layers):
        ours = f"transformer_layer_{index}/"
        theirs = f"{prefix}encoder.layer.{index}."
        attention = ours + "self_attention_layer/"
        for projection in ("query", "key", "value"):
            sources.update(
                _dense(
                    attention + projection,
                    theirs + "attention.self." + projection,
                )
            )
        sources.update(
            _dense(
                attention + "attention_output",
                theirs + "attention.output.dense",
            )
        )
        sources.update(
            _layer_norm(
                ours + "self_attention_layer_norm",
                theirs + "attention.output.LayerNorm",
            )
        )
        sources.update(
            _dense(
                ours + "feedforward_intermediate_dense",
                theirs + "intermediate.dense",
            )
        )
        sources.update(
            _dense(ours + "feedforward_output_dense", theirs + "output.dense")
        )
        sources.update(
            _layer_norm(
                ours + "feedforward_layer_norm", theirs + "output.LayerNorm"
            )
        )
    if prefix + _POOLER + ".weight" in weights:
        sources.update(_dense("pooled_dense", prefix + _POOLER))
    return sources


def _mlm_sources() -> dict[str, Source]:
    return {
        **_dense("mlm_head/intermediate_dense", _MLM + ".transform.dense"),
        **_layer_norm(
            "mlm_head/intermediate_layer_norm", _MLM + ".transform.LayerNorm"
        ),
        "mlm_head/output_bias": (_MLM + ".bias", "vector"),
    }


def _nsp_sources() -> dict[str, Source]:
    return {
        "next_sentence_head/kernel": (_NSP + ".weight", "nsp"),
        "next_sentence_head/bias": (_NSP + ".bias", "nsp"),
    }


def _dense(path: str, name: str) -> dict[str, Source]:
    return {
        path + "/kernel": (name + ".weight", "matrix"),
        path + "/bias": (name + ".bias", "vector"),
    }


def _layer_norm(path: str, name: str) -> dict[str, Source]:
    return {
        path + "/gamma": (name + ".weight", "vector"),
        path + "/beta": (name + ".bias", "vector"),
    }


def _assign_all(model, weights: dict, sources: dict[str, Source]) -> None:
    """Assigns every source to its variable; checks names and shapes."""
    variables = {variable.path: variable for variable in model.weights}
    for path, (name, kind) in sources.items():
        if name not in weights:
            stem = name.rsplit(".", 2)[0]
            similar = sorted(k for k in weights if k.startswith(stem))[:8]
            raise ValueError(
                f"Weight {name!r} is missing from the checkpoint (names "
                f"under {stem!r}: {similar})."
            )
        value = weights[name]
        if kind == "matrix":
            value = value.T
        elif kind == "nsp":
            # (2, hidden) -> (hidden, 2), or (2,); class 0 "is next" -> 1.
            value = value.T[..., ::-1]
        variable = variables[path]
        shape = tuple(variable.shape)
        if value.shape != shape and (
            value.ndim == len(shape) or value.size != np.prod(shape)
        ):
            raise ValueError(
                f"Checkpoint weight {name!r} has shape {value.shape} but "
                f"{path} expects {shape}; the config does not "
                "match the weights."
            )
        variable.assign(np.reshape(value, shape))


def _check_tied_decoder(weights: dict, prefix: str) -> None:
    decoder = weights.get(_MLM + ".decoder.weight")
    tokens = weights[prefix + "embeddings.word_embeddings.weight"]
    if decoder is not None and not np.array_equal(decoder, tokens):
        logger.warning(
            "%s.decoder.weight differs from the word embeddings; the "
            "converted MLM head is tied to the word embeddings.",
            _MLM,
        )
