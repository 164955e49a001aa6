"""SavedModel -> TFLite variants, with a parity report against the
SavedModel on real eval windows."""

from __future__ import annotations

import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from textmill.serving.signatures import GENERATE_IDS, LOGITS_FROM_IDS

VARIANTS = ("float32", "int8", "float16")


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(
            f"variant={variant!r} is not one of {', '.join(VARIANTS)}."
        )


def _optimize(converter, variant: str):
    if variant in ("int8", "float16"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter


def convert_to_tflite(model_dir: str, variant: str) -> bytes:
    """Converts the `logits_from_ids` signature of a SavedModel.

    Args:
        model_dir: the SavedModel directory.
        variant: "float32", "int8" (dynamic-range weights) or "float16".

    Returns:
        The TFLite flatbuffer.

    Raises:
        ValueError: unknown variant.
    """
    _check_variant(variant)
    converter = tf.lite.TFLiteConverter.from_saved_model(
        model_dir, signature_keys=[LOGITS_FROM_IDS]
    )
    return _optimize(converter, variant).convert()


def convert_generation_to_tflite(model_dir: str, variant: str) -> bytes:
    """Converts the `generate_ids` signature (the whole greedy loop).

    The signature's variables are frozen into constants first: the
    converter cannot read variables inside the decoding loop's while body.
    Ops without a TFLite kernel run as TF Select ops; the interpreter of
    the `tensorflow` pip package has them, a mobile app links the Select
    library.

    Args:
        model_dir: a SavedModel with a `generate_ids` signature.
        variant: "float32", "int8" (dynamic-range weights) or "float16".

    Returns:
        The TFLite flatbuffer, with a `generate_ids` signature.

    Raises:
        ValueError: unknown variant, or no `generate_ids` signature.
    """
    _check_variant(variant)
    loaded = tf.saved_model.load(model_dir)  # keeps the variables alive
    signatures = loaded.signatures
    if GENERATE_IDS not in signatures:
        raise ValueError(
            f"SavedModel {model_dir!r} has no {GENERATE_IDS!r} signature "
            f"(it has {', '.join(signatures)}); export it with "
            "`export_causal_lm`."
        )
    function = signatures[GENERATE_IDS]
    frozen = convert_variables_to_constants_v2(function)
    input_names = sorted(function.structured_input_signature[1])
    specs = [function.structured_input_signature[1][n] for n in input_names]

    def generate_ids(*inputs):
        # The frozen function takes its inputs in the original order and
        # returns the flattened outputs.
        by_name = dict(zip(input_names, inputs, strict=False))
        ordered = [by_name[_input_name(t)] for t in frozen.inputs]
        return tf.nest.pack_sequence_as(
            function.structured_outputs, frozen(*ordered)
        )

    module = tf.Module()
    module.generate_ids = tf.function(generate_ids, input_signature=specs)
    with tempfile.TemporaryDirectory() as frozen_dir:
        tf.saved_model.save(
            module, frozen_dir, signatures={GENERATE_IDS: module.generate_ids}
        )
        converter = tf.lite.TFLiteConverter.from_saved_model(
            frozen_dir, signature_keys=[GENERATE_IDS]
        )
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS,
            tf.lite.OpsSet.SELECT_TF_OPS,
        ]
        return _optimize(converter, variant).convert()


def _input_name(tensor: tf.Tensor) -> str:
    """`prompt_ids` for a placeholder named `prompt_ids:0`."""
    return tensor.name.split(":")[0]


class TFLiteLogits:
    """Runs a converted `logits_from_ids` model on named numpy inputs.

    Args:
        flatbuffer: the TFLite model bytes.
    """

    def __init__(self, flatbuffer: bytes):
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
        self._runner = interpreter.get_signature_runner(LOGITS_FROM_IDS)

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Named int inputs [1, length] -> logits [1, ...]."""
        feed = {name: value.astype(np.int32) for name, value in inputs.items()}
        return self._runner(**feed)["logits"]


def parity_report(reference, candidate, inputs: list[dict]) -> dict:
    """Largest absolute logit difference and top-1 agreement.

    Args:
        reference: callable named inputs -> logits (the SavedModel).
        candidate: callable named inputs -> logits (a TFLite variant).
        inputs: the network inputs to compare on (eval data).
    """
    max_diff, agree, total = 0.0, 0, 0
    for feed in inputs:
        ref = reference(feed)
        got = candidate(feed)
        max_diff = max(max_diff, float(np.abs(ref - got).max()))
        agree += int((ref.argmax(-1) == got.argmax(-1)).sum())
        total += int(np.prod(ref.shape[:-1]))
    return {
        "inputs": len(inputs),
        "positions": total,
        "max_abs_logit_diff": max_diff,
        "top1_agreement": agree / total,
    }
