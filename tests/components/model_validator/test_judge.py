import numpy as np

from textmill.components.model_validator.executor import judge
from textmill.serving.saved_model_scoring import perplexity, window_nll


def test_absolute_threshold():
    blessed, reason = judge(120.0, None, max_perplexity=100, max_regression=0)
    assert not blessed and "above the threshold" in reason


def test_regression_against_baseline():
    blessed, reason = judge(10.6, 10.0, max_perplexity=100,
                            max_regression=0.05)
    assert not blessed and "worse than the last blessed" in reason
    blessed, reason = judge(10.4, 10.0, max_perplexity=100,
                            max_regression=0.05)
    assert blessed and "within 5%" in reason


def test_first_model_is_blessed_without_baseline():
    blessed, reason = judge(50.0, None, max_perplexity=100, max_regression=0)
    assert blessed and "no blessed model" in reason


def test_perplexity_of_uniform_logits_is_vocabulary_size():
    vocab = 17
    windows = np.random.default_rng(0).integers(0, vocab, size=(3, 9))
    assert np.isclose(
        perplexity(lambda ids: np.zeros((len(ids), vocab)), windows), vocab
    )
    # A model that puts all mass on the label has perplexity ~1.
    def oracle(ids, window=windows[0]):
        logits = np.full((len(ids), vocab), -50.0)
        logits[np.arange(len(ids)), window[1:]] = 50.0
        return logits

    assert np.isclose(np.exp(window_nll(oracle(windows[0][:-1]),
                                        windows[0]).mean()), 1.0)
