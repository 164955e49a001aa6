"""ModelValidator executor: the family's eval metrics against absolute
thresholds, the family's trivial baseline and the last blessed model."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from textmill.components.model_validator.gate import (
    ABSOLUTE_LIMITS,
    judge,
    without_samples,
)
from textmill.components.model_validator.teacher import (
    score_teacher,
    teacher_report,
)
from textmill.families import load_family
from textmill.features import (
    BASELINE_MODEL_KEY,
    BLESSING_KEY,
    CONFIDENCE_KEY,
    EXAMPLES_KEY,
    MAX_EVAL_WINDOWS_KEY,
    MAX_REGRESSION_KEY,
    MIN_BASELINE_GAIN_KEY,
    MODEL_KEY,
)
from textmill.serving.model_metadata import read_model_metadata

EVALUATION_FILE = "evaluation.json"
THRESHOLD_KEYS = (
    *(key for _, key, _ in ABSOLUTE_LIMITS),
    MIN_BASELINE_GAIN_KEY,
    MAX_REGRESSION_KEY,
    CONFIDENCE_KEY,
)


def score_model(model_uri: str, examples, max_batches: int) -> dict:
    """The family's eval metrics of the SavedModel in a Model artifact."""
    model_dir = path_utils.serving_model_path(model_uri)
    family = load_family(read_model_metadata(model_dir)["family"])
    return family.evaluate(model_dir, examples, max_batches)


def score_baseline(model_uri: str, examples, max_batches: int) -> dict:
    """The family's trivial baseline on the units `score_model` scores."""
    model_dir = path_utils.serving_model_path(model_uri)
    family = load_family(read_model_metadata(model_dir)["family"])
    return family.baseline(model_dir, examples, max_batches)


class Executor(base_executor.BaseExecutor):
    """Scores the candidate, the trivial baseline and the last blessed
    model on the same eval units; writes the ModelBlessing."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
        baselines = input_dict.get(BASELINE_MODEL_KEY) or []
        blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        max_batches = exec_properties[MAX_EVAL_WINDOWS_KEY]
        thresholds = {key: exec_properties.get(key) for key in THRESHOLD_KEYS}
        family = load_family(
            read_model_metadata(path_utils.serving_model_path(model.uri))[
                "family"
            ]
        ).spec

        candidate = score_model(model.uri, examples, max_batches)
        baseline = score_baseline(model.uri, examples, max_batches)
        if not baselines:
            blessed_metrics = None
        elif baselines[0].uri == model.uri:  # a cached model, re-validated
            blessed_metrics = candidate
        else:
            blessed_metrics = score_model(
                baselines[0].uri, examples, max_batches
            )
        teacher = score_teacher(model.uri, examples, max_batches)
        verdict = judge(
            family.gate_metric,
            family.baseline_gate_metric,
            candidate,
            baseline,
            blessed_metrics,
            thresholds,
        )
        blessed, reason = verdict.blessed, verdict.reason
        logging.info(
            "ModelValidator: %s (%s)",
            "BLESSED" if blessed else "NOT BLESSED",
            reason,
        )
        evaluation = {
            "blessed": blessed,
            "reason": reason,
            "family": family.name,
            "gate_metric": family.gate_metric,
            "baseline_metric": family.baseline_gate_metric,
            "metrics": verdict.metrics,
            "candidate": without_samples(candidate),
            "baseline": without_samples(baseline),
            "last_blessed": without_samples(blessed_metrics),
            "baseline_model_uri": baselines[0].uri if baselines else None,
            "thresholds": thresholds,
        }
        if teacher:
            evaluation["teacher"] = teacher_report(
                family.gate_metric,
                candidate,
                teacher,
                thresholds["confidence"],
            )
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
        for name, value in without_samples(candidate).items():
            blessing.set_float_custom_property(name, float(value))
        if baselines:
            blessing.set_string_custom_property(
                "baseline_model", baselines[0].uri
            )
            blessing.set_int_custom_property(
                "baseline_model_id", baselines[0].id
            )
