"""The small, quick pipeline configuration every end-to-end test starts
from; each test overrides what it checks."""

import math
import os
import shutil

import pytest

from textmill.config import PipelineConfig, with_overrides
from textmill.pipelines.local import SUMMARY_FILE, run_local

# Where `run_one_step` keeps its summary, beside the work dir's
# summary.json that a later run overwrites.
ONE_STEP_SUMMARY_FILE = "summary_one_step.json"


def smoke_config(tmp_path, family: str, input_patterns, **sections):
    """A tiny-preset run of `family` under `tmp_path`.

    Args:
        tmp_path: the test's directory; work/ and serving/ go below it.
        family: the `--family` value.
        input_patterns: the ingest file patterns.
        **sections: fields replaced per section, as in `with_overrides`
            (e.g. `train={"train_steps": 12}`).
    """
    base = with_overrides(
        PipelineConfig(),
        top={
            "family": family,
            "work_dir": str(tmp_path / "work"),
            "serving_dir": str(tmp_path / "serving"),
            # In-process Beam keeps the test quick; `make run` uses the
            # multi-process default.
            "beam_pipeline_args": ["--direct_num_workers=1"],
        },
        ingest={"input_patterns": list(input_patterns)},
        tokenizer={"vocab_size": 600},
        train={
            "preset": "tiny",
            "sequence_length": 64,
            "batch_size": 8,
            "train_steps": 8,
            "checkpoint_every": 4,
            "eval_steps": 2,
            "warmup_steps": 2,
        },
        export={"parity_windows": 3},
    )
    return with_overrides(base, **sections)


def run_one_step(config) -> dict:
    """Runs `config` for a single optimizer step (a model at chance), with
    the baseline enforced whatever `config` says.

    Returns:
        The run's summary, plus `serving_dir_after`: what the serving
        directory held right after this run, before any later run. The
        summary file is also kept as `ONE_STEP_SUMMARY_FILE` in the work
        dir, so the 1-step and smoke runs' baselines can be read after a
        test session.
    """
    summary = run_local(
        with_overrides(
            config,
            train={"train_steps": 1},
            validation={"enforce_baseline": True},
        )
    )
    shutil.copyfile(
        os.path.join(config.work_dir, SUMMARY_FILE),
        os.path.join(config.work_dir, ONE_STEP_SUMMARY_FILE),
    )
    serving = config.serving_dir
    summary["serving_dir_after"] = (
        sorted(os.listdir(serving)) if os.path.isdir(serving) else []
    )
    return summary


def assert_refused_by_baseline(summary: dict, baseline: str):
    """A run (of `run_one_step`) whose model the gate refused against its
    trivial baseline: the reason names the baseline, nothing was pushed."""
    assert "error" not in summary, summary.get("error")
    assert summary["outcome"] == "refused", summary.get("validation")
    reason = summary["validation"]["reason"]
    assert f"does not beat the baseline ({baseline}" in reason, reason
    assert not summary["pushed"]
    assert summary["serving_dir_after"] == []


def assert_curve_ends_at_the_gate(summary: dict):
    """The Trainer's last val_nll (the eval curve's last point) is the log
    of the validator's perplexity: the same model on the same eval units,
    NLL summed over them and divided once, to float32 precision."""
    perplexity = summary["validation"]["candidate"]["perplexity"]
    assert summary["training"]["final_val_nll"] == pytest.approx(
        math.log(perplexity), rel=1e-5
    )
