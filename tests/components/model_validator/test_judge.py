import numpy as np

from textmill.components.model_validator.gate import (
    SAMPLES_KEY,
    compare,
    judge,
    metric_value,
    samples,
)
from textmill.serving.saved_model_scoring import perplexity, window_nll

THRESHOLDS = {
    "max_perplexity": 100.0,
    "min_accuracy": 0.6,
    "min_rouge_l": 0.2,
    "min_baseline_gain": 0.05,
    "max_regression": 0.05,
    "confidence": 0.95,
}


def _lm(window_nll_sums, tokens=64) -> dict:
    """Perplexity metrics of per-window NLL sums over `tokens` tokens."""
    counts = np.full(len(window_nll_sums), tokens)
    return {
        "perplexity": metric_value("perplexity", window_nll_sums, counts),
        SAMPLES_KEY: samples("perplexity", window_nll_sums, counts),
    }


def _accuracy(correct) -> dict:
    ones = np.ones(len(correct))
    return {
        "accuracy": metric_value("accuracy", correct, ones),
        SAMPLES_KEY: samples("accuracy", correct, ones),
    }


def _windows(mean_nll, count=200, spread=0.3, seed=0):
    """Per-window NLL sums of 64 tokens around `mean_nll` nats/token."""
    rng = np.random.default_rng(seed)
    return 64 * (mean_nll + spread * rng.standard_normal(count))


def test_absolute_thresholds():
    verdict = judge(
        "perplexity",
        "perplexity",
        {"perplexity": 120.0},
        None,
        None,
        THRESHOLDS,
    )
    assert not verdict.blessed and "above the threshold" in verdict.reason
    verdict = judge(
        "accuracy", "accuracy", {"accuracy": 0.55}, None, None, THRESHOLDS
    )
    assert "below the threshold min_accuracy" in verdict.reason
    verdict = judge(
        "rougeL",
        "perplexity",
        {"rougeL": 0.25, "perplexity": 120.0},
        None,
        None,
        THRESHOLDS,
    )
    assert not verdict.blessed and "max_perplexity" in verdict.reason
    assert verdict.metrics["perplexity"]["verdict"] == "fail"
    assert verdict.metrics["rougeL"]["verdict"] == "pass"


def test_chance_level_model_is_refused_naming_the_baseline():
    # A 4,096-token model at chance (ln 4096 = 8.32 nats/token) against a
    # unigram baseline at 6.0 nats/token, on the same 200 windows.
    candidate = _lm(_windows(8.32, seed=1))
    unigram = {"name": "unigram", **_lm(_windows(6.0, seed=2))}
    thresholds = dict(THRESHOLDS, max_perplexity=1e4)
    verdict = judge(
        "perplexity", "perplexity", candidate, unigram, None, thresholds
    )
    assert not verdict.blessed
    assert "does not beat the baseline (unigram)" in verdict.reason
    row = verdict.metrics["perplexity"]
    assert row["verdict"] == "fail" and row["gain_over_baseline"] < -5
    assert row["interval_over_baseline"]["high"] < 0


def test_model_that_learned_beats_the_baseline():
    candidate = _lm(_windows(4.5, seed=1))
    unigram = {"name": "unigram", **_lm(_windows(6.0, seed=2))}
    verdict = judge(
        "perplexity", "perplexity", candidate, unigram, None, THRESHOLDS
    )
    assert verdict.blessed, verdict.reason
    assert "no blessed model" in verdict.reason
    row = verdict.metrics["perplexity"]
    assert row["baseline"] == unigram["perplexity"]
    assert row["interval_over_baseline"]["low"] > 0.05


def test_a_baseline_not_enforced_is_reported_only():
    candidate = _lm(_windows(8.32, seed=1))
    unigram = {"name": "unigram", **_lm(_windows(6.0, seed=2))}
    thresholds = dict(THRESHOLDS, max_perplexity=1e4, min_baseline_gain=None)
    verdict = judge(
        "perplexity", "perplexity", candidate, unigram, None, thresholds
    )
    assert verdict.blessed, verdict.reason
    assert "is not held to the baseline (unigram)" in verdict.reason
    row = verdict.metrics["perplexity"]
    assert row["interval_over_baseline"]["high"] < 0
    assert row["thresholds"]["min_baseline_gain"] is None


def test_gain_over_baseline_below_margin_is_refused():
    # 2 % better than the majority class is chance, not learning.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    majority = (labels == 1).astype(float)
    guesses = np.where(rng.random(400) < 0.52, labels, 1 - labels)
    verdict = judge(
        "accuracy",
        "accuracy",
        _accuracy((guesses == labels).astype(float)),
        {"name": "majority class 1", **_accuracy(majority)},
        None,
        dict(THRESHOLDS, min_accuracy=0.0),
    )
    assert not verdict.blessed
    assert "baseline (majority class 1)" in verdict.reason


def test_candidate_within_noise_of_the_blessed_model_is_accepted():
    # 200 windows whose per-window loss varies by 0.3 nats/token: a mean
    # 6 % worse cannot be told from noise by the paired bootstrap when the
    # windows disagree about which model is better.
    blessed = _lm(_windows(3.0, spread=0.3, seed=3))
    sums = blessed[SAMPLES_KEY]["perplexity"]["numerator"]
    rng = np.random.default_rng(4)
    noisy = sums + 64 * (0.06 * np.log(20) / 3 + 1.5 * rng.standard_normal(200))
    candidate = _lm(noisy)
    comparison = compare("perplexity", candidate, blessed, 0.95)
    assert comparison.gain < -0.05 < comparison.high  # worse, within noise
    verdict = judge(
        "perplexity", "perplexity", candidate, None, blessed, THRESHOLDS
    )
    assert verdict.blessed, verdict.reason
    assert "interval of the gain" in verdict.reason
    row = verdict.metrics["perplexity"]
    assert row["last_blessed"] == blessed["perplexity"]
    assert row["interval_over_last_blessed"]["level"] == 0.95


def test_candidate_worse_beyond_the_interval_is_refused():
    blessed = _lm(_windows(3.0, seed=3))
    sums = blessed[SAMPLES_KEY]["perplexity"]["numerator"]
    # 0.15 nats/token worse on every window: perplexity 16 % higher.
    candidate = _lm(sums + 64 * 0.15)
    verdict = judge(
        "perplexity", "perplexity", candidate, None, blessed, THRESHOLDS
    )
    assert not verdict.blessed
    assert "worse than the last blessed model" in verdict.reason
    assert "95% interval of the gain" in verdict.reason
    row = verdict.metrics["perplexity"]
    assert row["interval_over_last_blessed"]["high"] < -0.05


def test_accuracy_regression_follows_metric_direction():
    rng = np.random.default_rng(5)
    blessed = (rng.random(400) < 0.9).astype(float)
    worse = blessed.copy()
    worse[np.flatnonzero(blessed)[:80]] = 0  # 0.90 -> 0.70
    verdict = judge(
        "accuracy",
        "accuracy",
        _accuracy(worse),
        None,
        _accuracy(blessed),
        THRESHOLDS,
    )
    assert not verdict.blessed
    slightly = blessed.copy()
    slightly[np.flatnonzero(blessed)[:4]] = 0
    verdict = judge(
        "accuracy",
        "accuracy",
        _accuracy(slightly),
        None,
        _accuracy(blessed),
        THRESHOLDS,
    )
    assert verdict.blessed, verdict.reason


def test_point_estimates_decide_without_samples():
    verdict = judge(
        "perplexity",
        "perplexity",
        {"perplexity": 10.6},
        None,
        {"perplexity": 10.0},
        THRESHOLDS,
    )
    assert not verdict.blessed and "no interval" in verdict.reason
    verdict = judge(
        "perplexity",
        "perplexity",
        {"perplexity": 10.4},
        None,
        {"perplexity": 10.0},
        THRESHOLDS,
    )
    assert verdict.blessed


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
