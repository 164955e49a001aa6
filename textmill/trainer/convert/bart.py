"""Hugging Face BART checkpoints -> keras-hub `BartSeq2SeqLM` presets.

`convert_bart` reads a `BartModel` / `BartForConditionalGeneration` checkpoint
directory (the `facebook/bart-base` layout: `config.json`, weights as
safetensors, `tf_model.h5` or `pytorch_model.bin`, and `vocab.json` +
`merges.txt`) and writes a keras-hub preset directory that loads with
`keras_hub.models.BartSeq2SeqLM.from_preset(out_dir)` and that the
`translation` family fine-tunes from (`--init-from out_dir`). The tokenizer
files are also copied to the top of `out_dir`, where Transform imports them,
so one directory initialises both the tokenizer and the model.

Weight layout: BART's learned positions are looked up at `position + 2`
(the first two rows are never read by a left-aligned sequence), so keras-hub's
position tables are rows `2 : 2 + max_position_embeddings`. The LM head is
the shared token embedding, transposed, as in keras-hub; the checkpoint's
`final_logits_bias` (zero in BART's checkpoints) must be zero.
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

logger = logging.getLogger(__name__)

# BART's learned positions are offset by this many rows.
POSITION_OFFSET = 2
# keras-hub's BART layers compute the exact GELU with this epsilon.
ACTIVATION = "gelu"
# Options keras-hub's BART has no switch for: their only supported value.
_FIXED_OPTIONS = {
    "scale_embedding": False,
    "normalize_before": False,
    "add_final_layer_norm": False,
    "normalize_embedding": True,
    "static_position_embeddings": False,
    "add_bias_logits": False,
}
# Encoder and decoder share these sizes in keras-hub's BART.
_SYMMETRIC_SIZES = (
    ("encoder_layers", "decoder_layers"),
    ("encoder_attention_heads", "decoder_attention_heads"),
    ("encoder_ffn_dim", "decoder_ffn_dim"),
)
# The special tokens keras-hub's BART tokenizer needs.
_TOKENIZER_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>")
# Copies of the shared token embedding some checkpoints also hold.
_TIED_COPIES = (
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
)
_ATTENTION_PROJECTIONS = {
    "_query_dense": "q_proj",
    "_key_dense": "k_proj",
    "_value_dense": "v_proj",
    "_output_dense": "out_proj",
}


def convert_bart(hf_dir: str, out_dir: str) -> str:
    """Converts a Hugging Face BART checkpoint into a keras-hub preset.

    The preset holds a `BartSeq2SeqLM` and, when the checkpoint has
    `vocab.json` and `merges.txt` with BART's special tokens, keras-hub's
    BART preprocessor over the same vocabulary.

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
        ValueError: if the checkpoint is not BART, uses an option keras-hub's
            BART cannot express, or a weight is missing or mis-shaped.
    """
    config = read_hf_config(hf_dir)
    backbone = keras_hub.models.BartBackbone(**_backbone_kwargs(config, hf_dir))
    _load_weights(backbone, read_hf_weights(hf_dir), hf_dir)
    seq2seq_lm = keras_hub.models.BartSeq2SeqLM(
        backbone=backbone, preprocessor=_preprocessor(hf_dir, backbone)
    )
    return save_preset(seq2seq_lm, hf_dir, out_dir, "BART")


def _backbone_kwargs(config: dict, hf_dir: str) -> dict:
    """`BartBackbone` arguments from a BART `config.json`, checked."""
    source = os.path.join(hf_dir, "config.json")
    model_type = config.get("model_type")
    if model_type != "bart":
        raise ValueError(
            f"{source} has model_type={model_type!r}; convert_bart reads "
            "BART checkpoints (model_type 'bart', e.g. facebook/bart-base)."
        )
    activation = config.get("activation_function", ACTIVATION)
    if activation != ACTIVATION:
        raise ValueError(
            f"{source} has activation_function={activation!r}; keras-hub's "
            f"BART computes {ACTIVATION!r} (the exact GELU)."
        )
    for option, supported in _FIXED_OPTIONS.items():
        if config.get(option, supported) != supported:
            raise ValueError(
                f"{source} has {option}={config[option]!r}; keras-hub's BART "
                f"supports only {option}={supported!r} (BART's)."
            )
    for encoder_key, decoder_key in _SYMMETRIC_SIZES:
        if config[encoder_key] != config[decoder_key]:
            raise ValueError(
                f"{source} has {encoder_key}={config[encoder_key]} but "
                f"{decoder_key}={config[decoder_key]}; keras-hub's BART has "
                "one size for both."
            )
    hidden_dim = config["d_model"]
    num_heads = config["encoder_attention_heads"]
    if hidden_dim % num_heads:
        raise ValueError(
            f"{source}: d_model={hidden_dim} is not a multiple of "
            f"encoder_attention_heads={num_heads}."
        )
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["encoder_layers"],
        "num_heads": num_heads,
        "hidden_dim": hidden_dim,
        "intermediate_dim": config["encoder_ffn_dim"],
        "dropout": config.get("dropout", 0.1),
        "max_sequence_length": config["max_position_embeddings"],
    }


def _load_dense(dense, weights: CheckpointWeights, name: str, out_in) -> None:
    """A PyTorch `Linear`, weight `(out, in)`, into a `Dense` or per-head
    `EinsumDense` of the same size."""
    assign(dense.kernel, weights.take(name + ".weight", out_in).T)
    assign(dense.bias, weights.take(name + ".bias", out_in[:1]))


def _load_attention(
    attention, weights: CheckpointWeights, name: str, hidden_dim
):
    """`q/k/v/out_proj` into keras MultiHeadAttention's per-head kernels:
    (hidden, hidden) -> (hidden, heads, head_dim) for the projections and
    (heads, head_dim, hidden) for the output, by `_assign`."""
    for ours, theirs in _ATTENTION_PROJECTIONS.items():
        _load_dense(
            getattr(attention, ours),
            weights,
            f"{name}.{theirs}",
            (hidden_dim, hidden_dim),
        )


def _load_feedforward(
    layer, weights: CheckpointWeights, name: str, backbone
) -> None:
    hidden_dim = backbone.hidden_dim
    intermediate_dim = backbone.intermediate_dim
    _load_dense(
        layer._feedforward_intermediate_dense,
        weights,
        name + ".fc1",
        (intermediate_dim, hidden_dim),
    )
    _load_dense(
        layer._feedforward_output_dense,
        weights,
        name + ".fc2",
        (hidden_dim, intermediate_dim),
    )
    load_layer_norm(
        layer._feedforward_layer_norm, weights, name + ".final_layer_norm"
    )


def _load_embeddings(backbone, weights: CheckpointWeights, side: str) -> None:
    """One side's learned positions (past BART's offset) and embedding
    layer norm."""
    length, hidden_dim = backbone.max_sequence_length, backbone.hidden_dim
    positions = weights.take(
        f"{side}.embed_positions.weight",
        (length + POSITION_OFFSET, hidden_dim),
    )
    table = getattr(backbone, f"{side}_position_embedding")
    assign(table.position_embeddings, positions[POSITION_OFFSET:])
    load_layer_norm(
        getattr(backbone, f"{side}_embeddings_layer_norm"),
        weights,
        f"{side}.layernorm_embedding",
    )


def _check_tied(
    weights: CheckpointWeights, shared: np.ndarray, hf_dir: str
) -> None:
    """The copies of the token embedding, and the LM head, must equal it:
    keras-hub's BART ties them."""
    names = [weights.prefix + copy for copy in _TIED_COPIES]
    for name in [*names, "lm_head.weight"]:
        value = weights.get(name)
        if value is not None and not np.array_equal(value, shared):
            raise ValueError(
                f"{name} in {hf_dir!r} differs from the shared token "
                "embeddings (shared.weight); keras-hub's BART ties its "
                "embeddings and LM head, so untied ones cannot be converted."
            )
    # `BartForConditionalGeneration`'s; a bare `BartModel` has none.
    bias = weights.get("final_logits_bias")
    if bias is not None and np.any(bias):
        raise ValueError(
            f"final_logits_bias in {hf_dir!r} is not zero (largest "
            f"|value| {np.abs(bias).max():.3g}); keras-hub's BART LM head "
            "has no bias, so this checkpoint cannot be converted exactly."
        )


# HF's attention blocks, and the keras-hub attention and layer norm that
# hold each.
_ATTENTION_BLOCKS = {
    "self_attn": ("_self_attention_layer", "_self_attention_layer_norm"),
    "encoder_attn": ("_cross_attention_layer", "_cross_attention_layer_norm"),
}


def _load_layer(
    layer, weights: CheckpointWeights, name: str, blocks, backbone
) -> None:
    """One encoder or decoder layer: its attention `blocks` (each with the
    layer norm after it), then its feedforward."""
    for block in blocks:
        attention, layer_norm = _ATTENTION_BLOCKS[block]
        _load_attention(
            getattr(layer, attention),
            weights,
            f"{name}.{block}",
            backbone.hidden_dim,
        )
        load_layer_norm(
            getattr(layer, layer_norm), weights, f"{name}.{block}_layer_norm"
        )
    _load_feedforward(layer, weights, name, backbone)


def _load_weights(backbone, weights: dict, hf_dir: str) -> None:
    """Assigns every BART weight to `backbone`."""
    checkpoint = CheckpointWeights(
        weights,
        hf_dir,
        "BART",
        # `BartForConditionalGeneration` prefixes the `BartModel` names.
        prefix="model." if "model.shared.weight" in weights else "",
    )
    shared = checkpoint.take(
        "shared.weight", (backbone.vocabulary_size, backbone.hidden_dim)
    )
    assign(backbone.token_embedding.embeddings, shared)
    _check_tied(checkpoint, shared, hf_dir)
    for side in ("encoder", "decoder"):
        _load_embeddings(backbone, checkpoint, side)
    layer_blocks = (
        ("encoder", backbone.encoder_transformer_layers, ("self_attn",)),
        (
            "decoder",
            backbone.decoder_transformer_layers,
            ("self_attn", "encoder_attn"),
        ),
    )
    for side, layers, blocks in layer_blocks:
        for index, layer in enumerate(layers):
            _load_layer(
                layer, checkpoint, f"{side}.layers.{index}", blocks, backbone
            )
    checkpoint.warn_unused()


def _preprocessor(hf_dir: str, backbone):
    """keras-hub's BART preprocessor over the checkpoint's tokenizer files,
    or None when they are missing or lack BART's special tokens."""
    paths = tokenizer_files(hf_dir)
    if paths is None:
        return None
    vocab_json, merges_txt = paths
    with tempfile.TemporaryDirectory() as line_format_dir:
        # Checks the files (contiguous ids, merges over known tokens).
        tokens = import_hf_bpe(
            vocab_json, merges_txt, line_format_dir
        ).read_vocab()
    warn_on_vocabulary_size(vocab_json, tokens, backbone)
    missing = [t for t in _TOKENIZER_SPECIAL_TOKENS if t not in tokens]
    if missing:
        logger.warning(
            "%s lacks %s; the preset gets no keras-hub preprocessor.",
            vocab_json,
            missing,
        )
        return None
    tokenizer = keras_hub.models.BartTokenizer(
        vocabulary=vocab_json, merges=merges_txt
    )
    return keras_hub.models.BartSeq2SeqLMPreprocessor(
        tokenizer,
        encoder_sequence_length=backbone.max_sequence_length,
        decoder_sequence_length=backbone.max_sequence_length,
    )
