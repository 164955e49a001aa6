"""Hugging Face GPT-2 / DistilGPT2 checkpoints -> keras-hub GPT-2 presets.

`convert_gpt2` reads a `GPT2Model` / `GPT2LMHeadModel` checkpoint directory
(the `gpt2` and `distilgpt2` layouts: `config.json`, weights as safetensors,
`tf_model.h5` or `pytorch_model.bin`, and `vocab.json` + `merges.txt`) and
writes a keras-hub preset directory that loads with
`keras_hub.models.Backbone.from_preset(out_dir)`,
`keras_hub.models.GPT2CausalLM.from_preset(out_dir)` and
`build_gpt2_causal_lm(..., init_from=out_dir)`. The tokenizer files are also
copied to the top of `out_dir`, where Transform imports them
(`learn_byte_bpe(init_from=out_dir)`), so one directory initialises both the
tokenizer and the model.

Weight layout: GPT-2's `Conv1D` layers keep their weights as `(in, out)`,
which is a Keras kernel already; `c_attn` holds the query, key and value
projections side by side, which keras-hub keeps as three `EinsumDense`
layers with per-head kernels.
"""

import logging
import os
import tempfile

import keras_hub
import numpy as np

from textmill.tokenization.bpe_files import (
    import_hf_bpe,
)
from textmill.trainer.convert.checkpoint_weights import (
    CheckpointWeights,
    assign,
    load_layer_norm,
    save_preset,
    tokenizer_files,
    warn_on_vocabulary_size,
)
from textmill.trainer.convert.hf_checkpoint import (
    read_hf_config,
    read_hf_weights,
)
from textmill.trainer.models.gpt2.gpt2_causal_lm import gpt2_preprocessor

logger = logging.getLogger(__name__)

END_OF_TEXT = "<|endoftext|>"
# Hugging Face names of the tanh approximation of GELU, which is what
# keras-hub's GPT-2 layers compute.
TANH_GELU_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")
# keras-hub's GPT-2 layer norms use this epsilon, as GPT-2 does.
LAYER_NORM_EPSILON = 1e-5
# Config options whose only supported value is GPT-2's default.
_FIXED_OPTIONS = {
    "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False,
    "add_cross_attention": False,
}
# Causal-mask buffers some PyTorch checkpoints store next to the weights.
_BUFFER_SUFFIXES = (".attn.bias", ".attn.masked_bias")


def convert_gpt2(hf_dir: str, out_dir: str) -> str:
    """Converts a Hugging Face GPT-2 checkpoint into a keras-hub preset.

    The preset holds a `GPT2CausalLM` (the LM head is GPT-2's, tied to the
    token embeddings) and, when the checkpoint has `vocab.json` and
    `merges.txt` with an `<|endoftext|>` token, keras-hub's GPT-2
    preprocessor over the same vocabulary.

    Args:
        hf_dir: directory with `config.json` and `model.safetensors`,
            `tf_model.h5` or `pytorch_model.bin` (see `hf_checkpoint`), and
            normally `vocab.json` + `merges.txt`.
        out_dir: preset directory to write (created if needed).

    Returns:
        `out_dir`.

    Raises:
        FileNotFoundError: if `hf_dir`, its config or its weights are
            missing.
        ValueError: if the checkpoint is not GPT-2, uses an option keras-hub's
            GPT-2 cannot express, or a weight is missing or mis-shaped.
    """
    config = read_hf_config(hf_dir)
    backbone = keras_hub.models.GPT2Backbone(**_backbone_kwargs(config, hf_dir))
    weights = read_hf_weights(hf_dir)
    _load_weights(backbone, weights, hf_dir)
    causal_lm = keras_hub.models.GPT2CausalLM(
        backbone=backbone,
        preprocessor=_preprocessor(hf_dir, backbone),
    )
    return save_preset(causal_lm, hf_dir, out_dir, "GPT-2")


def _backbone_kwargs(config: dict, hf_dir: str) -> dict:
    """`GPT2Backbone` arguments from a GPT-2 `config.json`, checked."""
    source = os.path.join(hf_dir, "config.json")
    model_type = config.get("model_type")
    if model_type != "gpt2":
        raise ValueError(
            f"{source} has model_type={model_type!r}; convert_gpt2 reads "
            "GPT-2 checkpoints (model_type 'gpt2', e.g. gpt2, distilgpt2)."
        )
    activation = config.get("activation_function", "gelu_new")
    if activation not in TANH_GELU_ACTIVATIONS:
        raise ValueError(
            f"{source} has activation_function={activation!r}; keras-hub's "
            "GPT-2 computes the tanh GELU, one of "
            f"{', '.join(TANH_GELU_ACTIVATIONS)}."
        )
    epsilon = config.get("layer_norm_epsilon", LAYER_NORM_EPSILON)
    if not np.isclose(epsilon, LAYER_NORM_EPSILON, rtol=1e-6, atol=0):
        raise ValueError(
            f"{source} has layer_norm_epsilon={epsilon}; keras-hub's GPT-2 "
            f"uses {LAYER_NORM_EPSILON}."
        )
    for option, supported in _FIXED_OPTIONS.items():
        if config.get(option, supported) != supported:
            raise ValueError(
                f"{source} has {option}={config[option]!r}; only "
                f"{supported!r} (GPT-2's default) can be converted."
            )
    hidden_dim, num_heads = config["n_embd"], config["n_head"]
    if hidden_dim % num_heads:
        raise ValueError(
            f"{source}: n_embd={hidden_dim} is not a multiple of "
            f"n_head={num_heads}."
        )
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["n_layer"],
        "num_heads": num_heads,
        "hidden_dim": hidden_dim,
        "intermediate_dim": config.get("n_inner") or 4 * hidden_dim,
        "dropout": config.get("resid_pdrop", 0.1),
        "max_sequence_length": config["n_positions"],
    }


def _load_conv1d(dense, weights: CheckpointWeights, name: str, in_out) -> None:
    """A `Conv1D`, weight `(in, out)` and bias `(out,)`, into a `Dense` or
    per-head `EinsumDense` of the same size."""
    assign(dense.kernel, weights.take(name + ".weight", in_out))
    assign(dense.bias, weights.take(name + ".bias", in_out[1:]))


def _load_attention(attention, weights: CheckpointWeights, name: str) -> None:
    """`attn.c_attn` / `attn.c_proj` into keras-hub's per-head projections."""
    hidden_dim = attention._query_dense.kernel.shape[0]
    kernel = weights.take(name + ".c_attn.weight", (hidden_dim, 3 * hidden_dim))
    bias = weights.take(name + ".c_attn.bias", (3 * hidden_dim,))
    projections = (
        attention._query_dense,
        attention._key_dense,
        attention._value_dense,
    )
    # Query, key and value side by side: (hidden, 3 * hidden) -> 3 x
    # (hidden, hidden), each reshaped to (hidden, heads, head_dim) and the
    # biases to (heads, head_dim) by `_assign`.
    for dense, part_kernel, part_bias in zip(
        projections, np.split(kernel, 3, axis=1), np.split(bias, 3), strict=True
    ):
        assign(dense.kernel, part_kernel)
        assign(dense.bias, part_bias)
    # (heads * head_dim, hidden) -> (heads, head_dim, hidden)
    _load_conv1d(
        attention._output_dense,
        weights,
        name + ".c_proj",
        (hidden_dim, hidden_dim),
    )


def _load_weights(backbone, weights: dict, hf_dir: str) -> None:
    """Assigns every GPT-2 weight to `backbone`."""
    checkpoint = CheckpointWeights(
        weights,
        hf_dir,
        "GPT-2",
        # LM-head checkpoints prefix the base model's names.
        prefix="transformer." if "transformer.wte.weight" in weights else "",
        ignored_suffixes=_BUFFER_SUFFIXES,
    )
    hidden_dim = backbone.hidden_dim
    token_embeddings = checkpoint.take(
        "wte.weight", (backbone.vocabulary_size, hidden_dim)
    )
    assign(backbone.token_embedding.embeddings, token_embeddings)
    assign(
        backbone.position_embedding.position_embeddings,
        checkpoint.take(
            "wpe.weight", (backbone.max_sequence_length, hidden_dim)
        ),
    )
    for index, layer in enumerate(backbone.transformer_layers):
        name = f"h.{index}"
        load_layer_norm(
            layer._self_attention_layer_norm, checkpoint, name + ".ln_1"
        )
        _load_attention(layer._self_attention_layer, checkpoint, name + ".attn")
        load_layer_norm(
            layer._feedforward_layer_norm, checkpoint, name + ".ln_2"
        )
        _load_conv1d(
            layer._feedforward_intermediate_dense,
            checkpoint,
            name + ".mlp.c_fc",
            (hidden_dim, backbone.intermediate_dim),
        )
        _load_conv1d(
            layer._feedforward_output_dense,
            checkpoint,
            name + ".mlp.c_proj",
            (backbone.intermediate_dim, hidden_dim),
        )
    load_layer_norm(backbone.layer_norm, checkpoint, "ln_f")
    lm_head = checkpoint.get("lm_head.weight")
    if lm_head is not None:
        if not np.array_equal(lm_head, token_embeddings):
            raise ValueError(
                f"lm_head.weight in {hf_dir!r} differs from the token "
                "embeddings (wte.weight); keras-hub's GPT-2 ties its LM head "
                "to the token embeddings, so an untied head cannot be "
                "converted."
            )
    checkpoint.warn_unused()


def _preprocessor(hf_dir: str, backbone):
    """keras-hub's GPT-2 preprocessor over the checkpoint's tokenizer files,
    or None when they are missing or lack `<|endoftext|>`."""
    paths = tokenizer_files(hf_dir)
    if paths is None:
        return None
    vocab_json, merges_txt = paths
    with tempfile.TemporaryDirectory() as line_format_dir:
        # Checks the files (contiguous ids, merges over known tokens).
        files = import_hf_bpe(vocab_json, merges_txt, line_format_dir)
        tokens = files.read_vocab()
        warn_on_vocabulary_size(vocab_json, tokens, backbone)
        if END_OF_TEXT not in tokens:
            logger.warning(
                "%s has no %s token; the preset gets no keras-hub "
                "preprocessor.",
                vocab_json,
                END_OF_TEXT,
            )
            return None
        return gpt2_preprocessor(files, backbone.max_sequence_length)
