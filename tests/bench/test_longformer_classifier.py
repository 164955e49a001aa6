"""bench/longformer_classifier: byte encoding, checks, and agreeing arms."""

import json

import numpy as np
import pytest

from tests.bench.bench_scripts import load_bench, run_bench

bench = load_bench("longformer_classifier")

TINY = {
    "num_layers": 1,
    "hidden_dim": 32,
    "num_heads": 4,
    "intermediate_dim": 64,
    "attention_window": 8,
    "vocabulary_size": 300,
    "max_sequence_length": 64,
}


def test_encode_bytes_with_start_end_and_padding():
    token_ids, mask = bench.encode(["ab", "é" * 10], 6)
    assert token_ids[0].tolist() == [0, ord("a") + 3, ord("b") + 3, 2, 1, 1]
    assert mask[0].tolist() == [1, 1, 1, 1, 0, 0]
    # Truncated to the length: <s>, 4 bytes, </s>.
    assert token_ids[1].tolist() == [
        0,
        0xC3 + 3,
        0xA9 + 3,
        0xC3 + 3,
        0xA9 + 3,
        2,
    ]
    assert mask[1].sum() == 6


def test_compare_reports_diff_agreement_and_accuracy():
    reference = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    other = reference + np.array([[0.0, 0.0], [0.0, 0.0], [-3.0, 0.0]])
    rows = bench.compare(
        {"hf_tf": reference, "textmill": other}, np.array([0, 1, 1]), "hf_tf"
    )
    assert rows["hf_tf"]["max_abs_logit_diff"] == 0.0
    assert rows["textmill"]["max_abs_logit_diff"] == pytest.approx(3.0)
    assert rows["textmill"]["top1_agreement"] == pytest.approx(2 / 3)
    assert rows["hf_tf"]["accuracy"] == pytest.approx(2 / 3)
    assert rows["textmill"]["accuracy"] == 1.0


@pytest.mark.slow
def test_arms_agree_on_a_tiny_model(tmp_path):
    pytest.importorskip("transformers")
    results = run_bench(
        "longformer_classifier",
        tmp_path,
        "--config",
        json.dumps(TINY),
        "--lengths",
        "40",
        "--repeats",
        "1",
        "--documents",
        "8",
        timeout=600,
    )
    row = results["by_length"]["40"]
    assert row["errors"] == {}
    assert row["checks"]["textmill"]["max_abs_logit_diff"] < 1e-4
    assert row["checks"]["textmill"]["top1_agreement"] == 1.0
    assert set(row["examples_per_s"]) == {"textmill", "hf_tf"}
    assert row["examples_per_s"]["textmill"]["n"] == 1
    assert "| 40 |" in (tmp_path / "results.md").read_text()
