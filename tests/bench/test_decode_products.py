"""bench/decode_products: equal products on every arm, and its tables."""

import pytest

from tests.bench.bench_scripts import load_bench, run_bench

bench = load_bench("decode_products")


def _outputs(**logits):
    return {arm: {"logits_head": [values]} for arm, values in logits.items()}


def test_check_accepts_float32_rounding_and_refuses_other_work():
    same = [1.0, -2.0, 4.0]
    rounded = [1.0, -2.0, 4.0 + 1e-6]
    assert bench._check(_outputs(numpy=same, tensorflow=rounded, xla=same)) < (
        1e-6
    )
    with pytest.raises(RuntimeError, match="xla's logits differ"):
        bench._check(
            _outputs(numpy=same, tensorflow=same, xla=[1.0, -2.0, 3.0])
        )


@pytest.mark.slow
def test_arms_run_the_same_products(tmp_path):
    results = run_bench(
        "decode_products",
        tmp_path,
        "--layers",
        "1",
        "--vocab",
        "1000",
        "--batches",
        "1",
        "4",
        "--steps",
        "2",
        "--repeats",
        "1",
        timeout=600,
    )
    assert results["max_relative_difference"] < 1e-4
    assert results["weight_bytes"] == 4 * (
        768 * 3 * 768
        + 768 * 768
        + 2 * 768 * 3072
        + 3 * 768
        + 768
        + 3072
        + 768
        + 1000 * 768
    )
    for batch in ("1", "4"):
        for arm in bench.ARMS:
            assert results["ms_per_step"][batch][arm]["n"] == 1
    table = (tmp_path / "results.md").read_text()
    assert "| 4 | " in table and "tensorflow / xla time" in table
