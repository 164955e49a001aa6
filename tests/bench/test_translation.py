"""bench/translation: new-token counting, sources, and agreeing arms."""

import json

import numpy as np
import pytest

from tests.bench.bench_scripts import load_bench, run_bench

bench = load_bench("translation")

TINY = {
    "num_layers": 1,
    "hidden_dim": 32,
    "num_heads": 4,
    "intermediate_dim": 64,
    # Room for the longest source in bytes-and-pairs tokens.
    "max_sequence_length": 256,
    "vocabulary_size": 400,
}


def test_new_tokens_end_at_the_first_stop_token():
    ids = np.array([[5, 6, 2, 1, 1], [7, 8, 9, 10, 11], [2, 2, 1, 1, 1]])
    assert bench.new_tokens(ids) == [[5, 6, 2], [7, 8, 9, 10, 11], [2]]


def test_sources_have_unequal_lengths():
    texts = [" ".join(f"w{i}" for i in range(40))] * len(bench.SOURCE_WORDS)
    lengths = [len(s.split()) for s in bench.sources(texts)]
    assert lengths == list(bench.SOURCE_WORDS)
    assert len(set(lengths)) == len(lengths)


@pytest.mark.slow
def test_arms_agree_on_a_tiny_model(tmp_path):
    pytest.importorskip("transformers")
    results = run_bench(
        "translation",
        tmp_path,
        "--config",
        json.dumps(TINY),
        "--repeats",
        "1",
        "--new-tokens",
        "6",
        "--documents",
        "30",
        timeout=900,
    )
    assert results["errors"] == {}
    for arm in bench.ARMS:
        for batch in bench.BATCHES:
            check = results["checks"][arm][f"batch_{batch}"]
            assert check == {"rows": batch, "equal": batch}, arm
            assert results["tokens_per_s"][arm][f"batch_{batch}"]["n"] == 1
    assert results["work_tokens"]["batch_8"] > 8
    assert "| textmill_savedmodel |" in (tmp_path / "results.md").read_text()
