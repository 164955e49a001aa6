"""A distilled student beside its teacher: the teacher's metric on the
eval units the student is scored on, and the student/teacher ratio with
a paired-bootstrap interval. Reported, never gated."""

from __future__ import annotations

from tfx.utils import path_utils

from textmill.components.model_validator.gate import compare, without_samples
from textmill.families import load_family
from textmill.serving.model_metadata import read_model_metadata


def score_teacher(model_uri: str, examples, max_batches: int) -> dict:
    """The teacher's eval metrics on the candidate's units, with per-unit
    samples ({} when the model was not distilled)."""
    model_dir = path_utils.serving_model_path(model_uri)
    metadata = read_model_metadata(model_dir)
    if not metadata.get("distilled_from"):
        return {}
    return load_family(metadata["family"]).teacher(
        model_dir, examples, max_batches
    )


def teacher_report(
    metric: str, candidate: dict, teacher: dict, level: float
) -> dict:
    """The teacher's metrics and the student/teacher ratio of `metric`.

    Args:
        metric: the family's gate metric (perplexity).
        candidate, teacher: metrics with per-unit samples of the same units.
        level: the interval's confidence level.

    Returns:
        The teacher's metrics (without samples), `student`, the
        `student_teacher_ratio` and its `interval_of_ratio` (`low`, `high`,
        `level`; None without samples).
    """
    comparison = compare(metric, candidate, teacher, level)
    # gain = 1 - student / teacher, so ratio = 1 - gain.
    interval = (
        None
        if comparison.low is None
        else {
            "low": 1 - comparison.high,
            "high": 1 - comparison.low,
            "level": level,
        }
    )
    return {
        **without_samples(teacher),
        "student": comparison.candidate,
        "student_teacher_ratio": 1 - comparison.gain,
        "interval_of_ratio": interval,
    }
