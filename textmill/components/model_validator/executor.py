"""ModelValidator executor: the family's eval metrics against thresholds
and against the last blessed model."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from textmill.families import Family, get_family
from textmill.serving.model_metadata import read_model_metadata

EVALUATION_FILE = "evaluation.json"
# (metric, threshold, whether higher is better): limits every candidate
# that reports the metric must meet, whatever the baseline.
ABSOLUTE_LIMITS = (
    ("perplexity", "max_perplexity", False),
    ("accuracy", "min_accuracy", True),
    ("rougeL", "min_rouge_l", True),
)


def judge(
    family: Family,
    candidate: dict,
    baseline: dict | None,
    thresholds: dict,
) -> tuple[bool, str]:
    """The blessing verdict and its reason, in words.

    Args:
        family: decides which metric is compared with the baseline.
        candidate: the candidate's metrics (any of `ABSOLUTE_LIMITS`'s).
        baseline: the last blessed model's metrics on the same data.
        thresholds: the `ABSOLUTE_LIMITS` thresholds and `max_regression`.
    """
    for metric, key, higher_is_better in ABSOLUTE_LIMITS:
        if metric not in candidate:
            continue
        value, limit = candidate[metric], thresholds[key]
        if value < limit if higher_is_better else value > limit:
            side = "below" if higher_is_better else "above"
            return False, (
                f"eval {metric} {value:.4g} is {side} the threshold "
                f"{key}={limit:g}"
            )
    metric = family.gate_metric
    value = candidate[metric]
    margin = thresholds["max_regression"]
    if baseline is None:
        return True, (
            f"eval {metric} {value:.4g} meets the thresholds (no blessed "
            "model to compare with yet)"
        )
    old = baseline[metric]
    worse = (
        value < old * (1 - margin)
        if family.higher_is_better
        else value > old * (1 + margin)
    )
    if worse:
        return False, (
            f"eval {metric} {value:.4g} is worse than the last blessed "
            f"model's {old:.4g} by more than max_regression={margin:.0%}"
        )
    return True, (
        f"eval {metric} {value:.4g} meets the thresholds and is within "
        f"{margin:.0%} of the last blessed model's {old:.4g}"
    )


def score_model(model_uri: str, examples, max_batches: int) -> dict:
    """The family's eval metrics of the SavedModel in a Model artifact."""
    model_dir = path_utils.serving_model_path(model_uri)
    family = get_family(read_model_metadata(model_dir)["family"])
    return family.function("evaluate")(model_dir, examples, max_batches)


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
        max_batches = exec_properties["max_eval_windows"]
        thresholds = {
            key: exec_properties.get(key) or 0.0
            for key in (
                *(key for _, key, _ in ABSOLUTE_LIMITS),
                "max_regression",
            )
        }
        family = get_family(
            read_model_metadata(path_utils.serving_model_path(model.uri))[
                "family"
            ]
        )

        candidate = score_model(model.uri, examples, max_batches)
        if not baselines:
            baseline = None
        elif baselines[0].uri == model.uri:  # a cached model, re-validated
            baseline = candidate
        else:
            baseline = score_model(baselines[0].uri, examples, max_batches)
        blessed, reason = judge(family, candidate, baseline, thresholds)
        logging.info(
            "ModelValidator: %s (%s)",
            "BLESSED" if blessed else "NOT BLESSED",
            reason,
        )
        evaluation = {
            "blessed": blessed,
            "reason": reason,
            "family": family.name,
            "candidate": candidate,
            "baseline": baseline,
            "baseline_model_uri": baselines[0].uri if baselines else None,
            "thresholds": thresholds,
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
        for name, value in candidate.items():
            blessing.set_float_custom_property(name, float(value))
        if baselines:
            blessing.set_string_custom_property(
                "baseline_model", baselines[0].uri
            )
            blessing.set_int_custom_property(
                "baseline_model_id", baselines[0].id
            )
