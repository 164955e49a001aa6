"""A causal LM as the TFLite model the LiteRT-LM runtime drives.

The runtime owns the decoding loop and the key-value cache; the model only
runs the network on a chunk of tokens. It finds everything by name:

    prefill_<T>(tokens int32 [1, T], input_pos int32 [T],
                kv_cache_k_<i>, kv_cache_v_<i> float32 [1, heads, C, head_dim]
                for every layer i)
        -> logits float32 [1, T, vocab], kv_cache_k_<i>, kv_cache_v_<i>
    decode(tokens int32 [1, 1], input_pos int32 [1], the same caches)
        -> logits float32 [1, 1, vocab], the same caches

Each call writes its tokens' keys and values at positions `input_pos[0]`,
`input_pos[0] + 1`, ... of the caches (the runtime keeps the returned
caches in place) and attends to positions up to each token's own. The
runtime pads a prompt's last prefill chunk, so a chunk may run past the
prompt; the padding's cache entries lie after the prompt and are
overwritten by the decode steps before any token can see them. The cache
holds `C` positions; a chunk starting at `p` needs `p + T <= C`, so a
bundle serves at most `C - T` tokens (`max_num_tokens`).

Only TFLite builtin ops: the runtime has no TF Select kernels.

Both signatures read one set of weights: the model's Keras variables are
copied once into plain TensorFlow variables that both functions capture
(through a `keras.StatelessScope`), the converter freezes them from the
SavedModel, and the flatbuffer keeps one buffer per weight. Freezing each
function's variables to constants before saving (the converter cannot
read the Keras variables of the cached forward pass directly) gave a copy
of the weights per signature and, at DistilGPT2's shape (82M parameters),
a conversion killed above 9 GB of memory; shared variables convert it in
3.9 GB (float32) and 3.0 GB (int8).
"""

from __future__ import annotations

import tempfile

import keras
import tensorflow as tf

from textmill.serving.sampling import decode_ops

DECODE = "decode"
TOKENS = "tokens"
INPUT_POS = "input_pos"
LOGITS = "logits"
LITERT_LM_VARIANTS = ("float32", "int8")


def prefill_signature(length: int) -> str:
    """The runtime's name of the prefill signature for `length` tokens."""
    return f"prefill_{length}"


def cache_names(num_layers: int) -> list[str]:
    """`kv_cache_k_0, kv_cache_v_0, kv_cache_k_1, ...`."""
    return [f"kv_cache_{kind}_{i}" for i in range(num_layers) for kind in "kv"]


def _cache_specs(model, cache_length: int) -> list[tf.TensorSpec]:
    backbone = model.backbone
    shape = [
        1,
        backbone.num_heads,
        cache_length,
        backbone.hidden_dim // backbone.num_heads,
    ]
    return [
        tf.TensorSpec(shape, tf.float32, name=name)
        for name in cache_names(len(backbone.transformer_layers))
    ]


def _chunk_function(model, weights: list, length: int, cache_length: int):
    """A `tf.function` of `length` tokens on the named caches that reads
    the model's weights from `weights` (plain variables, one per Keras
    variable, in `model.weights` order)."""
    names = cache_names(len(model.backbone.transformer_layers))
    mapping = list(zip(model.weights, weights, strict=True))
    specs = [
        tf.TensorSpec([1, length], tf.int32, name=TOKENS),
        tf.TensorSpec([length], tf.int32, name=INPUT_POS),
        *_cache_specs(model, cache_length),
    ]

    def chunk(tokens, input_pos, *caches):
        pairs = tuple(zip(caches[0::2], caches[1::2], strict=True))
        with keras.StatelessScope(state_mapping=mapping):
            logits, _, updated = decode_ops.forward(
                model, tokens, pairs, input_pos[0], tf_kernels=False
            )
        flat = [tensor for pair in updated for tensor in pair]
        return {LOGITS: logits, **dict(zip(names, flat, strict=True))}

    return tf.function(chunk, input_signature=specs)


def signature_module(
    model, prefill_length: int, cache_length: int
) -> tf.Module:
    """The module the converter reads: one copy of the weights as plain
    variables (`weights`) and the `prefill_<T>` and `decode` functions
    that both capture them (`chunk_functions`, by signature name).

    Args:
        model: the causal LM.
        prefill_length: tokens per prefill call.
        cache_length: positions of the key-value cache.
    """
    module = tf.Module()
    module.weights = [tf.Variable(v.numpy()) for v in model.weights]
    module.chunk_functions = {
        prefill_signature(prefill_length): _chunk_function(
            model, module.weights, prefill_length, cache_length
        ),
        DECODE: _chunk_function(model, module.weights, 1, cache_length),
    }
    return module


def convert_kv_cache_tflite(
    model, prefill_length: int, cache_length: int, variant: str
) -> bytes:
    """Converts a keras-hub GPT-2 family causal LM for LiteRT-LM.

    Args:
        model: the causal LM (a `GPT2CausalLM`; see
            `decode_ops.check_cached_model`).
        prefill_length: tokens per prefill call (`prefill_<T>`).
        cache_length: positions of the key-value cache, at most the
            model's `max_sequence_length`.
        variant: "float32", or "int8" (dynamic-range int8 weights).

    Returns:
        The TFLite flatbuffer with `prefill_<T>` and `decode` signatures.

    Raises:
        ValueError: an unknown variant, a model without a GPT-2 style
            backbone, or lengths that do not fit the model.
    """
    if variant not in LITERT_LM_VARIANTS:
        raise ValueError(
            f"variant={variant!r} is not one of "
            f"{', '.join(LITERT_LM_VARIANTS)}."
        )
    decode_ops.check_cached_model(model)
    max_length = model.backbone.max_sequence_length
    if not 1 <= prefill_length < cache_length <= max_length:
        raise ValueError(
            f"prefill_length={prefill_length}, cache_length={cache_length}: "
            f"need 1 <= prefill_length < cache_length <= {max_length} (the "
            "model's max_sequence_length)."
        )
    module = signature_module(model, prefill_length, cache_length)
    functions = module.chunk_functions
    with tempfile.TemporaryDirectory() as saved_dir:
        tf.saved_model.save(module, saved_dir, signatures=functions)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_dir, signature_keys=list(functions)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if variant == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return converter.convert()
