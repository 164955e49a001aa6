import pytest

from textmill.components.model_validator.gate import (
    SAMPLES_KEY,
    judge,
    metric_value,
    samples,
)
from textmill.config import ConfigError, ValidationConfig
from textmill.pipelines import cli
from textmill.pipelines.summary import (
    format_summary,
    outcome,
    training_summary,
)

THRESHOLDS = {
    "max_perplexity": 1e4,
    "min_accuracy": 0.0,
    "min_rouge_l": 0.0,
    "min_baseline_gain": 0.05,
    "max_regression": 0.05,
    "confidence": 0.95,
}


def _lm(per_window_nll):
    counts = [32] * len(per_window_nll)
    return {
        "perplexity": metric_value("perplexity", per_window_nll, counts),
        SAMPLES_KEY: samples("perplexity", per_window_nll, counts),
    }


def _summary(candidate_nll, pushed):
    baseline = {"name": "unigram", **_lm([32 * 5.2, 32 * 5.0, 32 * 5.4])}
    verdict = judge(
        "perplexity",
        "perplexity",
        _lm(candidate_nll),
        baseline,
        None,
        THRESHOLDS,
    )
    return {
        "run_id": "r",
        "pipeline": "p",
        "pushed": pushed,
        "not_pushed_reason": None if pushed else "not blessed",
        "serving_model_dir": "/s/1",
        "validation": {
            "blessed": verdict.blessed,
            "reason": verdict.reason,
            "candidate": {"perplexity": _lm(candidate_nll)["perplexity"]},
            "baseline": {"name": "unigram"},
            "metrics": verdict.metrics,
        },
    }


def test_summary_shows_baseline_interval_and_verdict_per_metric():
    summary = _summary([32 * 4.0, 32 * 3.9, 32 * 4.2], pushed=True)
    text = format_summary(summary)
    assert (
        "perplexity: candidate 56.45; baseline (unigram) 181.3 (+68.9%, "
        "95% interval [" in text
    )
    assert "min_baseline_gain=0.05" in text and text.count(": pass") == 1
    assert outcome(summary) == "pushed"


def test_refused_run_has_its_own_outcome():
    refused = _summary([32 * 8.3, 32 * 8.2, 32 * 8.4], pushed=False)
    assert not refused["validation"]["blessed"]
    assert outcome(refused) == "refused"
    assert outcome({**refused, "error": "RuntimeError: x"}) == "failed"
    assert outcome({"pushed": False}) == "failed"
    assert (
        len(
            {
                cli.EXIT_PUSHED,
                cli.EXIT_FAILED,
                cli.EXIT_CONFIG_ERROR,
                cli.EXIT_REFUSED,
            }
        )
        == 4
    )


@pytest.mark.parametrize(
    "field, value", [("confidence", 1.0), ("min_baseline_gain", -0.1)]
)
def test_gate_settings_are_checked(field, value):
    with pytest.raises(ConfigError, match=f"validation.{field}"):
        ValidationConfig(**{field: value}).validate()


def test_training_and_generation_parity_are_in_the_summary(tmp_path):
    (tmp_path / "history.csv").write_text(
        "epoch,loss,val_loss,val_nll\n0,6.1,5.9,5.8\n1,5.2,5.05,5.04\n"
    )
    training = training_summary(str(tmp_path))
    assert training["epochs"] == 2
    assert training["final_loss"] == 5.2
    assert training["final_val_nll"] == 5.04
    assert training["loss_plot"] == str(tmp_path / "loss_curves.png")
    summary = _summary([32 * 4.0, 32 * 3.9, 32 * 4.2], pushed=True)
    summary["training"] = training
    summary["tflite"] = {
        "variants": {},
        "generation": {
            "variants": {
                "int8": {
                    "bytes": 10,
                    "parity": {
                        "prompts": 4,
                        "identical": 2,
                        "token_agreement": 0.75,
                    },
                }
            }
        },
    }
    text = format_summary(summary)
    assert (
        "tflite generation int8: 10 bytes, greedy tokens identical for 2 "
        "of 4 prompts (token agreement 0.75)" in text
    )
    assert "training: 2 epochs, final loss 5.2000, val_nll 5.0400" in text


def test_a_distilled_student_is_shown_beside_its_teacher(tmp_path):
    from textmill.components.model_validator.teacher import teacher_report
    from textmill.trainer.throughput import write_throughput

    student = _lm([32 * 4.0, 32 * 3.9, 32 * 4.2])
    teacher = _lm([32 * 3.5, 32 * 3.6, 32 * 3.4])
    report = teacher_report("perplexity", student, teacher, 0.95)
    ratio = student["perplexity"] / teacher["perplexity"]
    assert report["student_teacher_ratio"] == pytest.approx(ratio)
    assert report["student"] == pytest.approx(student["perplexity"])
    assert SAMPLES_KEY not in report
    interval = report["interval_of_ratio"]
    # Every window's student NLL is above the teacher's: the whole
    # interval lies above 1.
    assert 1 < interval["low"] <= ratio <= interval["high"]

    (tmp_path / "history.csv").write_text(
        "epoch,loss,val_loss,val_nll\n0,6.1,5.9,5.8\n"
    )

    class Train:
        train_steps, batch_size, sequence_length = 10, 4, 32
        distill_from = "presets/t"

    written = write_throughput(str(tmp_path), Train, 2.0)
    assert written["train_tokens_per_second"] == 640.0
    summary = _summary([32 * 4.0, 32 * 3.9, 32 * 4.2], pushed=True)
    summary["training"] = training_summary(str(tmp_path))
    assert summary["training"]["distilled"] is True
    summary["validation"]["gate_metric"] = "perplexity"
    summary["validation"]["teacher"] = {**report, "preset_dir": "presets/t"}
    text = format_summary(summary)
    assert (
        f"teacher: perplexity {teacher['perplexity']:.4g} on the same "
        f"windows; student/teacher {ratio:.3f} (95% interval [" in text
    )
    assert "val_nll 5.8000, 640 tokens/s; curves in" in text
