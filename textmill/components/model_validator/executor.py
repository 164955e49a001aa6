"""ModelValidator executor: perplexity gate against thresholds and the
last blessed model."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from textmill.components.eval_windows import load_eval_windows
from textmill.serving.model_metadata import read_model_metadata
from textmill.serving.saved_model_scoring import SavedModelLogits, perplexity

EVALUATION_FILE = "evaluation.json"


def judge(
    candidate: float,
    baseline: float | None,
    max_perplexity: float,
    max_regression: float,
) -> tuple[bool, str]:
    """The blessing verdict and its reason, in words."""
    if candidate > max_perplexity:
        return False, (
            f"eval perplexity {candidate:.2f} is above the threshold "
            f"max_perplexity={max_perplexity:g}"
        )
    if baseline is not None and candidate > baseline * (1 + max_regression):
        return False, (
            f"eval perplexity {candidate:.2f} is worse than the last blessed "
            f"model's {baseline:.2f} by more than "
            f"max_regression={max_regression:.0%}"
        )
    against = (
        f" and within {max_regression:.0%} of the last blessed model's "
        f"{baseline:.2f}"
        if baseline is not None
        else " (no blessed model to compare with yet)"
    )
    return True, (
        f"eval perplexity {candidate:.2f} is under {max_perplexity:g}" + against
    )


def score_model(model_uri: str, examples, max_windows: int) -> dict:
    """Perplexity of the SavedModel inside Model artifact `model_uri`."""
    model_dir = path_utils.serving_model_path(model_uri)
    metadata = read_model_metadata(model_dir)
    logits = SavedModelLogits(model_dir)
    windows = load_eval_windows(
        examples, logits.sequence_length, metadata["eos_id"], max_windows
    )
    return {
        "perplexity": perplexity(logits, windows),
        "windows": len(windows),
        "tokens": int(windows.shape[0] * (windows.shape[1] - 1)),
    }


class Executor(base_executor.BaseExecutor):
    """Scores candidate and baseline; writes the ModelBlessing."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        model = artifact_utils.get_single_instance(input_dict["model"])
        baselines = input_dict.get("baseline_model") or []
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])
        max_windows = exec_properties["max_eval_windows"]

        candidate = score_model(model.uri, examples, max_windows)
        baseline = (
            score_model(baselines[0].uri, examples, max_windows)
            if baselines
            else None
        )
        blessed, reason = judge(
            candidate["perplexity"],
            baseline["perplexity"] if baseline else None,
            exec_properties["max_perplexity"],
            exec_properties["max_regression"],
        )
        logging.info(
            "ModelValidator: %s (%s)",
            "BLESSED" if blessed else "NOT BLESSED",
            reason,
        )

        evaluation = {
            "blessed": blessed,
            "reason": reason,
            "candidate": candidate,
            "baseline": baseline,
            "baseline_model_uri": baselines[0].uri if baselines else None,
            "thresholds": {
                "max_perplexity": exec_properties["max_perplexity"],
                "max_regression": exec_properties["max_regression"],
            },
        }
        io_utils.write_string_file(
            os.path.join(blessing.uri, EVALUATION_FILE),
            json.dumps(evaluation, indent=2),
        )
        io_utils.write_string_file(
            os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"),
            "",
        )
        blessing.set_int_custom_property("blessed", int(blessed))
        blessing.set_string_custom_property("reason", reason)
        blessing.set_string_custom_property("current_model", model.uri)
        blessing.set_int_custom_property("current_model_id", model.id)
        blessing.set_float_custom_property(
            "perplexity", candidate["perplexity"]
        )
        if baselines:
            blessing.set_string_custom_property(
                "baseline_model", baselines[0].uri
            )
            blessing.set_int_custom_property(
                "baseline_model_id", baselines[0].id
            )
            blessing.set_float_custom_property(
                "baseline_perplexity", baseline["perplexity"]
            )
