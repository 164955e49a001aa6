import numpy as np

from textmill.components.model_validator.executor import judge
from textmill.families import Family
from textmill.serving.saved_model_scoring import perplexity, window_nll

LM = Family("lm", "unused", gate_metric="perplexity", higher_is_better=False)
NSP = Family("nsp", "unused", gate_metric="accuracy", higher_is_better=True)
SUMMARY = Family("sum", "unused", gate_metric="rougeL", higher_is_better=True)
THRESHOLDS = {
    "max_perplexity": 100.0,
    "min_accuracy": 0.6,
    "min_rouge_l": 0.2,
    "max_regression": 0.05,
}


def test_absolute_thresholds():
    blessed, reason = judge(LM, {"perplexity": 120.0}, None, THRESHOLDS)
    assert not blessed and "above the threshold" in reason
    blessed, reason = judge(NSP, {"accuracy": 0.55}, None, THRESHOLDS)
    assert not blessed and "below the threshold min_accuracy" in reason
    blessed, reason = judge(
        SUMMARY, {"rougeL": 0.15, "perplexity": 20.0}, None, THRESHOLDS
    )
    assert not blessed and "below the threshold min_rouge_l" in reason
    blessed, reason = judge(
        SUMMARY, {"rougeL": 0.25, "perplexity": 120.0}, None, THRESHOLDS
    )
    assert not blessed and "max_perplexity" in reason


def test_rouge_gate_regression():
    baseline = {"rougeL": 0.30, "perplexity": 20.0}
    blessed, _ = judge(
        SUMMARY, {"rougeL": 0.27, "perplexity": 20.0}, baseline, THRESHOLDS
    )
    assert not blessed
    blessed, _ = judge(
        SUMMARY, {"rougeL": 0.29, "perplexity": 20.0}, baseline, THRESHOLDS
    )
    assert blessed


def test_regression_against_baseline_follows_metric_direction():
    blessed, reason = judge(
        LM, {"perplexity": 10.6}, {"perplexity": 10.0}, THRESHOLDS
    )
    assert not blessed and "worse than the last blessed" in reason
    blessed, reason = judge(
        LM, {"perplexity": 10.4}, {"perplexity": 10.0}, THRESHOLDS
    )
    assert blessed and "within 5%" in reason
    blessed, _ = judge(NSP, {"accuracy": 0.80}, {"accuracy": 0.90}, THRESHOLDS)
    assert not blessed
    blessed, _ = judge(NSP, {"accuracy": 0.88}, {"accuracy": 0.90}, THRESHOLDS)
    assert blessed


def test_first_model_is_blessed_without_baseline():
    blessed, reason = judge(LM, {"perplexity": 50.0}, None, THRESHOLDS)
    assert blessed and "no blessed model" in reason


def test_perplexity_of_uniform_logits_is_vocabulary_size():
    vocab = 17
    windows = np.random.default_rng(0).integers(0, vocab, size=(3, 9))

    def uniform(inputs):
        return np.zeros(inputs["token_ids"].shape + (vocab,))

    assert np.isclose(perplexity(uniform, windows), vocab)


def test_window_nll_of_an_oracle_is_zero():
    window = np.array([3, 1, 4, 1, 5])
    logits = np.full((4, 6), -50.0)
    logits[np.arange(4), window[1:]] = 50.0
    assert np.allclose(window_nll(logits, window), 0.0, atol=1e-6)
