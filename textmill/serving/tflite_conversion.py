"""SavedModel -> TFLite variants, with a parity report against the
SavedModel on real eval windows."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from textmill.serving.signatures import LOGITS_FROM_IDS

VARIANTS = ("float32", "int8", "float16")


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
    if variant not in VARIANTS:
        raise ValueError(
            f"variant={variant!r} is not one of {', '.join(VARIANTS)}."
        )
    converter = tf.lite.TFLiteConverter.from_saved_model(
        model_dir, signature_keys=[LOGITS_FROM_IDS]
    )
    if variant in ("int8", "float16"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


class TFLiteLogits:
    """Runs a converted `logits_from_ids` model on one window at a time.

    Args:
        flatbuffer: the TFLite model bytes.
    """

    def __init__(self, flatbuffer: bytes):
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
        self._runner = interpreter.get_signature_runner(LOGITS_FROM_IDS)

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """[sequence_length] ids -> [sequence_length, vocab] logits."""
        out = self._runner(token_ids=inputs[np.newaxis, :].astype(np.int32))
        return out["logits"][0]


def parity_report(reference, candidate, windows: np.ndarray) -> dict:
    """Largest absolute logit difference and top-1 agreement.

    Args:
        reference: callable ids -> logits (the SavedModel).
        candidate: callable ids -> logits (a TFLite variant).
        windows: [n, sequence_length + 1] eval windows.
    """
    max_diff, agree, total = 0.0, 0, 0
    for window in windows:
        ref = reference(window[:-1])
        got = candidate(window[:-1])
        max_diff = max(max_diff, float(np.abs(ref - got).max()))
        agree += int((ref.argmax(-1) == got.argmax(-1)).sum())
        total += ref.shape[0]
    return {
        "windows": int(len(windows)),
        "positions": total,
        "max_abs_logit_diff": max_diff,
        "top1_agreement": agree / total,
    }
