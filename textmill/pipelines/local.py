"""Runs a pipeline on this machine: LocalDagRunner, SQLite ML Metadata and
Beam's DirectRunner (multi-process by default)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import TextIO

from tfx import v1 as tfx

from textmill.config import PipelineConfig
from textmill.pipelines.console import component_progress
from textmill.pipelines.pipeline import create_pipeline
from textmill.pipelines.preflight import preflight
from textmill.pipelines.summary import build_summary, outcome
from textmill.pipelines.work_dir_lock import work_dir_lock

SUMMARY_FILE = "summary.json"


def absolute_paths(config: PipelineConfig) -> PipelineConfig:
    """Local paths made absolute, so components that run in other working
    directories (Beam workers) see the same files."""

    def fix(path):
        return path if not path or "://" in path else os.path.abspath(path)

    return dataclasses.replace(
        config,
        work_dir=fix(config.work_dir),
        serving_dir=fix(config.serving_dir),
        ingest=dataclasses.replace(
            config.ingest,
            input_patterns=tuple(fix(p) for p in config.ingest.input_patterns),
        ),
    )


def run_local(
    config: PipelineConfig,
    console: TextIO | None = None,
    log_file: str | None = None,
) -> dict:
    """Runs the pipeline and writes `summary.json` into the work directory.

    Args:
        config: the pipeline's configuration.
        console: where a line per component and the training progress go
            (None: nowhere; the times are in the summary either way).
        log_file: the run's log file, recorded in the summary.

    Returns:
        The summary; its "error" key is set when the run failed.

    Raises:
        ConfigError: before any work, if the config is invalid, an output
            directory is unwritable or another run holds the work dir.
    """
    config = absolute_paths(config)
    preflight(config)
    with work_dir_lock(config.work_dir):
        return _run_locked(config, console, log_file)


def _run_locked(
    config: PipelineConfig, console: TextIO | None, log_file: str | None
) -> dict:
    pipeline = create_pipeline(
        config,
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path
        ),
    )
    error = None
    started = time.monotonic()
    with component_progress(console, len(pipeline.components)) as progress:
        try:
            tfx.orchestration.LocalDagRunner().run(pipeline)
        except Exception as e:  # the summary still reports what did happen
            logging.exception("Pipeline run failed")
            error = f"{type(e).__name__}: {e}"
    try:
        summary = build_summary(config.metadata_path, config.pipeline_name)
    except LookupError as e:
        summary = {
            "pipeline": config.pipeline_name,
            "run_id": None,
            "pushed": False,
            "not_pushed_reason": str(e),
        }
    if error:
        summary["error"] = error
        summary["pushed"] = False
        summary["not_pushed_reason"] = f"the run failed: {error}"
    summary["components"] = progress.components
    summary["wall_seconds"] = round(time.monotonic() - started, 1)
    summary["log_file"] = log_file
    summary["outcome"] = outcome(summary)
    summary["config"] = config.to_dict()
    path = os.path.join(config.work_dir, SUMMARY_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, default=str)
    os.replace(tmp, path)
    return summary
