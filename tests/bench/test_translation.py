"""bench/translation: new-token counting, sources, and agreeing arms."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

_PATH = os.path.join(
    os.path.dirname(__file__), "..", "..", "bench", "translation", "run.py"
)
_SPEC = importlib.util.spec_from_file_location("bench_translation", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

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
    repo = os.path.join(os.path.dirname(__file__), "..", "..")
    done = subprocess.run(
        [
            sys.executable,
            _PATH,
            "--config",
            json.dumps(TINY),
            "--repeats",
            "1",
            "--new-tokens",
            "6",
            "--documents",
            "30",
            "--out-dir",
            str(tmp_path),
        ],
        env={**os.environ, "PYTHONPATH": os.path.abspath(repo)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "results.json") as f:
        results = json.load(f)
    assert results["errors"] == {}
    for arm in bench.ARMS:
        for batch in bench.BATCHES:
            check = results["checks"][arm][f"batch_{batch}"]
            assert check == {"rows": batch, "equal": batch}, arm
            assert results["tokens_per_s"][arm][f"batch_{batch}"]["n"] == 1
    assert results["work_tokens"]["batch_8"] > 8
    assert "| textmill_savedmodel |" in (tmp_path / "results.md").read_text()
