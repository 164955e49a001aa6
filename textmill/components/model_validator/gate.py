"""The blessing decision: absolute limits, a trivial baseline and the last
blessed model, compared on the same eval units with a paired bootstrap.

A family's `evaluate` and `baseline` return their metrics and, under
`SAMPLES_KEY`, per-unit sums (an eval window, pair or example is a unit):
for each metric a numerator and a denominator per unit, so that

    perplexity = exp(sum(numerator) / sum(denominator))   (NLL, tokens)
    accuracy, ROUGE = sum(numerator) / sum(denominator)   (score, count)

Resampling the units (the same indices for both models) gives the interval
of the candidate's relative gain over a reference:

    gain = 1 - candidate / reference    (lower is better: perplexity)
    gain = candidate / reference - 1    (higher is better: accuracy, ROUGE)
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

SAMPLES_KEY = "samples"
# Metrics a gate can compare, and whether higher is better.
HIGHER_IS_BETTER = {
    "perplexity": False,
    "accuracy": True,
    # Classifiers; reported beside accuracy, without an interval.
    "macro_f1": True,
    "rouge1": True,
    "rouge2": True,
    "rougeL": True,
    "chrf": True,
    "bleu": True,
}
# (metric, threshold key, whether higher is better): limits every candidate
# that reports the metric must meet, whatever the references.
ABSOLUTE_LIMITS = (
    ("perplexity", "max_perplexity", False),
    ("accuracy", "min_accuracy", True),
    ("rougeL", "min_rouge_l", True),
)
BOOTSTRAP_RESAMPLES = 1000


def metric_value(metric: str, numerator, denominator) -> float:
    """The metric of summed per-unit numerators and denominators."""
    ratio = float(np.sum(numerator)) / max(float(np.sum(denominator)), 1e-12)
    return math.exp(ratio) if metric == "perplexity" else ratio


def samples(metric: str, numerator, denominator) -> dict:
    """`{metric: {"numerator", "denominator"}}` for a `SAMPLES_KEY` entry."""
    return {
        metric: {
            "numerator": np.asarray(numerator, np.float64),
            "denominator": np.asarray(denominator, np.float64),
        }
    }


def _gain(metric: str, candidate, reference):
    reference = np.maximum(reference, 1e-12)
    if HIGHER_IS_BETTER[metric]:
        return candidate / reference - 1
    return 1 - candidate / reference


def _resampled(metric: str, unit_samples: dict, indices: np.ndarray):
    """The metric on each bootstrap resample [resamples]."""
    numerator = unit_samples["numerator"][indices].sum(axis=1)
    denominator = np.maximum(
        unit_samples["denominator"][indices].sum(axis=1), 1e-12
    )
    ratio = numerator / denominator
    return np.exp(ratio) if metric == "perplexity" else ratio


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The candidate's gain on one metric over a reference.

    Args:
        metric: the metric compared.
        candidate, reference: the two values.
        gain: the relative gain (positive: the candidate is better).
        low, high: the gain's bootstrap interval (None without samples).
        level: the interval's confidence level.
    """

    metric: str
    candidate: float
    reference: float
    gain: float
    low: float | None
    high: float | None
    level: float

    def interval(self) -> str:
        if self.low is None:
            return "no interval: per-unit scores missing"
        return (
            f"{self.level:.0%} interval of the gain "
            f"[{self.low:+.1%}, {self.high:+.1%}]"
        )


def compare(
    metric: str,
    candidate: dict,
    reference: dict,
    level: float,
    seed: int = 0,
) -> Comparison:
    """The candidate's gain over `reference` on `metric`, with a paired
    bootstrap interval when both carry per-unit samples of the same units.

    Args:
        metric: a `HIGHER_IS_BETTER` metric both score.
        candidate, reference: metrics with optional `SAMPLES_KEY`.
        level: the interval's confidence level, in (0, 1).
        seed: the resampling seed (the verdict is reproducible).
    """
    value, old = float(candidate[metric]), float(reference[metric])
    gain = float(_gain(metric, value, old))
    ours = candidate.get(SAMPLES_KEY, {}).get(metric)
    theirs = reference.get(SAMPLES_KEY, {}).get(metric)
    if (
        ours is None
        or theirs is None
        or len(ours["numerator"]) != len(theirs["numerator"])
        or not len(ours["numerator"])
    ):
        return Comparison(metric, value, old, gain, None, None, level)
    units = len(ours["numerator"])
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, units, size=(BOOTSTRAP_RESAMPLES, units))
    gains = _gain(
        metric,
        _resampled(metric, ours, indices),
        _resampled(metric, theirs, indices),
    )
    tail = (1 - level) / 2
    low, high = np.quantile(gains, [tail, 1 - tail])
    return Comparison(metric, value, old, gain, float(low), float(high), level)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The blessing decision.

    Args:
        blessed: whether the candidate may be pushed.
        reason: the decision in words (the first failed check, or why it
            passed).
        metrics: per metric: candidate, baseline, last_blessed, the gains
            and intervals over each, the thresholds applied and a verdict
            ("pass", "fail" or "reported" when no check applies).
    """

    blessed: bool
    reason: str
    metrics: dict


def _row(name, candidate, baseline, blessed) -> dict:
    def value(metrics):
        if metrics is None or name not in metrics:
            return None
        return float(metrics[name])

    return {
        "candidate": value(candidate),
        "baseline": value(baseline),
        "last_blessed": value(blessed),
        "thresholds": {},
        "verdict": "reported",
    }


def _record(row: dict, key: str, comparison: Comparison) -> None:
    row[f"gain_over_{key}"] = comparison.gain
    row[f"interval_over_{key}"] = (
        None
        if comparison.low is None
        else {
            "low": comparison.low,
            "high": comparison.high,
            "level": comparison.level,
        }
    )


def judge(
    gate_metric: str,
    baseline_metric: str,
    candidate: dict,
    baseline: dict | None,
    blessed: dict | None,
    thresholds: dict,
) -> Verdict:
    """The blessing verdict.

    The candidate is refused when it breaks an absolute limit, when it
    does not beat the trivial baseline on `baseline_metric` by
    `min_baseline_gain` (point estimate) with a gain whose interval lies
    above 0, or when its `gate_metric` is worse than the last blessed
    model's by more than `max_regression` with confidence (the whole
    interval of the gain below -max_regression). Without per-unit samples
    the point estimates decide.

    Args:
        gate_metric: compared with the last blessed model.
        baseline_metric: compared with the trivial baseline.
        candidate: the candidate's metrics (with `SAMPLES_KEY`).
        baseline: the trivial baseline's metrics on the same units, or
            None to skip that check.
        blessed: the last blessed model's metrics on the same units.
        thresholds: `ABSOLUTE_LIMITS`' keys, `min_baseline_gain`,
            `max_regression` and `confidence`.
    """
    level = thresholds["confidence"]
    rows = {
        name: _row(name, candidate, baseline, blessed)
        for name in HIGHER_IS_BETTER
        if name in candidate
    }
    failures: list[tuple[str, str]] = []

    def check(name: str, passed: bool, reason: str) -> None:
        row = rows[name]
        if not passed:
            failures.append((name, reason))
            row["verdict"] = "fail"
        elif row["verdict"] != "fail":
            row["verdict"] = "pass"

    for name, key, higher in ABSOLUTE_LIMITS:
        if name not in rows or thresholds.get(key) is None:
            continue
        value, limit = float(candidate[name]), thresholds[key]
        rows[name]["thresholds"][key] = limit
        broken = value < limit if higher else value > limit
        side = "below" if higher else "above"
        check(
            name,
            not broken,
            f"eval {name} {value:.4g} is {side} the threshold {key}={limit:g}",
        )

    notes = []
    if baseline is not None and baseline_metric in baseline:
        margin = thresholds["min_baseline_gain"]
        comparison = compare(baseline_metric, candidate, baseline, level)
        row = rows[baseline_metric]
        row["thresholds"]["min_baseline_gain"] = margin
        _record(row, "baseline", comparison)
        if margin is not None:
            beaten = comparison.gain >= margin and (
                comparison.low is None or comparison.low > 0
            )
            check(
                baseline_metric,
                beaten,
                f"eval {baseline_metric} {comparison.candidate:.4g} does not "
                f"beat the baseline ({baseline.get('name', 'trivial')}) "
                f"{comparison.reference:.4g} by min_baseline_gain="
                f"{margin:.0%} with confidence: gain {comparison.gain:+.1%}, "
                f"{comparison.interval()}",
            )
        held = "beats" if margin is not None else "is not held to"
        notes.append(
            f"{held} the baseline ({baseline.get('name', 'trivial')}) "
            f"{comparison.reference:.4g} by {comparison.gain:+.1%}"
        )
    for name in rows:
        if name != baseline_metric and baseline and name in baseline:
            _record(
                rows[name],
                "baseline",
                compare(name, candidate, baseline, level),
            )

    if blessed is not None:
        margin = thresholds["max_regression"]
        comparison = compare(gate_metric, candidate, blessed, level)
        row = rows[gate_metric]
        row["thresholds"]["max_regression"] = margin
        _record(row, "last_blessed", comparison)
        bound = comparison.gain if comparison.high is None else comparison.high
        check(
            gate_metric,
            bound >= -margin,
            f"eval {gate_metric} {comparison.candidate:.4g} is worse than "
            f"the last blessed model's {comparison.reference:.4g} by more "
            f"than max_regression={margin:.0%} with confidence: gain "
            f"{comparison.gain:+.1%}, {comparison.interval()}",
        )
        notes.append(
            f"is within max_regression={margin:.0%} of the last blessed "
            f"model's {comparison.reference:.4g} (gain "
            f"{comparison.gain:+.1%}, {comparison.interval()})"
        )
    else:
        notes.append("no blessed model to compare with yet")

    if failures:
        return Verdict(False, failures[0][1], rows)
    value = float(candidate[gate_metric])
    reason = f"eval {gate_metric} {value:.4g} meets the thresholds; " + (
        "; ".join(notes)
    )
    return Verdict(True, reason, rows)


def without_samples(metrics: dict | None) -> dict | None:
    """The metrics without their per-unit samples (for JSON)."""
    if metrics is None:
        return None
    return {k: v for k, v in metrics.items() if k != SAMPLES_KEY}
