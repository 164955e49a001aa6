"""What a pipeline run produced, read back from ML Metadata.

The summary answers what a user asks after a run: was a model pushed (and if
not, why), where are the SavedModel and the TFLite files, what were the
metrics, and what happened to the input documents.
"""

from __future__ import annotations

import csv
import json
import os

import tensorflow as tf
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from textmill.components.text_example_gen import REPORT_FILENAME
from textmill.serving.litert_lm.bundle import LITERTLM_SUFFIX
from textmill.serving.litert_lm.report import litert_lm_lines
from textmill.serving.model_formats import preset_model_path
from textmill.trainer.mean_nll import VAL_NLL
from textmill.trainer.throughput import read_throughput

_OUTPUT_EVENTS = (
    metadata_store_pb2.Event.OUTPUT,
    metadata_store_pb2.Event.DECLARED_OUTPUT,
)


def _read_json(path: str) -> dict | None:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def latest_run_outputs(
    store: metadata_store.MetadataStore, pipeline_name: str
) -> tuple[str, dict[str, list]]:
    """Artifacts output in the newest run of `pipeline_name`, by type name.

    Cached executions are part of a run too, so reused outputs appear.

    Returns:
        (run id, {artifact type name: [artifacts, newest first]}).

    Raises:
        LookupError: the pipeline never ran against this store.
    """
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        raise LookupError(f"no run of pipeline {pipeline_name!r} in MLMD.")
    newest = max(
        store.get_executions_by_context(pipeline.id),
        key=lambda e: (e.create_time_since_epoch, e.id),
    )
    run_type = store.get_context_type("pipeline_run").id
    run = next(
        c
        for c in store.get_contexts_by_execution(newest.id)
        if c.type_id == run_type
    )
    executions = store.get_executions_by_context(run.id)
    events = store.get_events_by_execution_ids([e.id for e in executions])
    ids = sorted({e.artifact_id for e in events if e.type in _OUTPUT_EVENTS})
    artifacts = store.get_artifacts_by_id(ids)
    types = {t.id: t.name for t in store.get_artifact_types()}
    by_type: dict[str, list] = {}
    for artifact in sorted(artifacts, key=lambda a: -a.id):
        by_type.setdefault(types[artifact.type_id], []).append(artifact)
    return run.name, by_type


def _prop(artifact, name: str):
    value = artifact.custom_properties.get(name)
    if value is None:
        return None
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def build_summary(metadata_path: str, pipeline_name: str) -> dict:
    """The summary of the newest run recorded in an SQLite MLMD file."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = 1  # READONLY
    store = metadata_store.MetadataStore(config)
    run_id, outputs = latest_run_outputs(store, pipeline_name)

    summary: dict = {"pipeline": pipeline_name, "run_id": run_id}
    examples = [
        a
        for a in outputs.get("Examples", [])
        if _read_json(os.path.join(a.uri, REPORT_FILENAME)) is not None
    ]
    if examples:
        summary["ingest"] = _read_json(
            os.path.join(examples[0].uri, REPORT_FILENAME)
        )
    if outputs.get("Model"):
        summary["model_artifact"] = outputs["Model"][0].uri
        preset_dir = preset_model_path(summary["model_artifact"])
        if tf.io.gfile.isdir(preset_dir):
            summary["preset_dir"] = preset_dir
    model_runs = outputs.get("ModelRun", [])
    if model_runs:
        summary["training"] = training_summary(model_runs[0].uri)
    blessings = outputs.get("ModelBlessing", [])
    if blessings:
        evaluation = (
            _read_json(os.path.join(blessings[0].uri, "evaluation.json")) or {}
        )
        summary["validation"] = evaluation
    tflite = outputs.get("textmill.TFLiteModel", [])
    if tflite:
        summary["tflite"] = _read_json(
            os.path.join(tflite[0].uri, "metadata.json")
        )
    pushed = outputs.get("PushedModel", [])
    if pushed:
        artifact = pushed[0]
        summary["pushed"] = bool(_prop(artifact, "pushed"))
        if summary["pushed"]:
            destination = _prop(artifact, "pushed_destination")
            summary["serving_model_dir"] = destination
            summary["tflite_files"] = (
                sorted(
                    os.path.join(destination, "tflite", name)
                    for name in tf.io.gfile.listdir(
                        os.path.join(destination, "tflite")
                    )
                    if name.endswith((".tflite", LITERTLM_SUFFIX))
                )
                if tf.io.gfile.isdir(os.path.join(destination, "tflite"))
                else []
            )
        else:
            summary["not_pushed_reason"] = _prop(artifact, "reason")
    else:
        summary["pushed"] = False
        summary["not_pushed_reason"] = "the run stopped before the pusher"
    return summary


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _gain(row: dict, key: str) -> str:
    gain = row.get(f"gain_over_{key}")
    if gain is None:
        return ""
    interval = row.get(f"interval_over_{key}")
    text = f" ({gain:+.1%}"
    if interval:
        text += (
            f", {interval['level']:.0%} interval "
            f"[{interval['low']:+.1%}, {interval['high']:+.1%}]"
        )
    return text + ")"


def format_metric_row(row: dict, baseline_name: str | None = None) -> str:
    """One metric of the gate's table: candidate, baseline and last
    blessed model with the candidate's gains and their intervals, the
    thresholds applied and the metric's verdict."""
    # A threshold not applied (min_baseline_gain with enforce_baseline
    # false) is None.
    thresholds = ", ".join(
        f"{key}={value:g}"
        for key, value in row["thresholds"].items()
        if value is not None
    )
    named = f" ({baseline_name})" if baseline_name else ""
    return (
        f"candidate {_number(row['candidate'])}; baseline{named} "
        f"{_number(row['baseline'])}{_gain(row, 'baseline')}; last blessed "
        f"{_number(row['last_blessed'])}{_gain(row, 'last_blessed')}"
        + (f"; {thresholds}" if thresholds else "")
        + f": {row['verdict']}"
    )


def outcome(summary: dict) -> str:
    """The run's outcome: "pushed", "refused" (the gate did not bless the
    model) or "failed" (the run stopped before a verdict, or the push
    failed)."""
    if summary.get("error"):
        return "failed"
    if summary.get("pushed"):
        return "pushed"
    validation = summary.get("validation")
    if validation and not validation.get("blessed"):
        return "refused"
    return "failed"


def training_summary(model_run_dir: str) -> dict:
    """The Trainer's last logged epoch and where its curves are.

    Args:
        model_run_dir: the ModelRun artifact's directory (TensorBoard logs,
            `history.csv`, `loss_curves.png`).
    """
    history_path = os.path.join(model_run_dir, "history.csv")
    last: dict = {}
    if tf.io.gfile.exists(history_path):
        with tf.io.gfile.GFile(history_path) as f:
            rows = list(csv.DictReader(f))
        last = rows[-1] if rows else {}
    return {
        "epochs": int(float(last["epoch"])) + 1 if "epoch" in last else 0,
        "final_loss": float(last["loss"]) if "loss" in last else None,
        # The eval curve's last point: the log of the gate's perplexity.
        "final_val_nll": float(last[VAL_NLL]) if VAL_NLL in last else None,
        "history_csv": history_path,
        "loss_plot": os.path.join(model_run_dir, "loss_curves.png"),
        "tensorboard_logdir": model_run_dir,
        **read_throughput(model_run_dir),
    }


def format_teacher(validation: dict) -> str:
    """A distilled student's line: the teacher's gate metric on the same
    eval units and the student/teacher ratio."""
    teacher, metric = validation["teacher"], validation["gate_metric"]
    interval = teacher.get("interval_of_ratio")
    spread = (
        f" ({interval['level']:.0%} interval [{interval['low']:.3f}, "
        f"{interval['high']:.3f}])"
        if interval
        else ""
    )
    return (
        f"teacher: {metric} {teacher[metric]:.4g} on the same windows; "
        f"student/teacher {teacher['student_teacher_ratio']:.3f}{spread}; "
        f"{teacher.get('preset_dir')}"
    )


def format_summary(summary: dict) -> str:
    """A few human-readable lines for the end of `textmill run`."""
    lines = [f"textmill run {summary['run_id']} of {summary['pipeline']}"]
    ingest = summary.get("ingest")
    if ingest:
        skipped = (
            ", ".join(
                f"{reason}={count}"
                for reason, count in sorted(ingest.get("skipped", {}).items())
                if count
            )
            or "none"
        )
        written = ", ".join(
            f"{split}={count}"
            for split, count in sorted(ingest.get("written", {}).items())
        )
        lines.append(
            f"  documents: read {ingest.get('documents_read')}, written "
            f"{written}; skipped: {skipped}"
        )
    validation = summary.get("validation")
    if validation:
        verdict = "BLESSED" if validation["blessed"] else "NOT BLESSED"
        lines.append(f"  validation: {verdict} - {validation['reason']}")
        metrics = ", ".join(
            f"{name} {value:.4g}"
            for name, value in sorted(validation["candidate"].items())
            if isinstance(value, int | float)
        )
        lines.append(f"  eval metrics: {metrics}")
        baseline = (validation.get("baseline") or {}).get("name")
        for name, row in sorted((validation.get("metrics") or {}).items()):
            lines.append(f"  {name}: {format_metric_row(row, baseline)}")
        if validation.get("teacher"):
            lines.append(f"  {format_teacher(validation)}")
    for variant, info in (
        (summary.get("tflite") or {}).get("variants") or {}
    ).items():
        parity = info["parity"]
        lines.append(
            f"  tflite {variant}: {info['bytes']} bytes, max |logit diff| "
            f"{parity['max_abs_logit_diff']:.2e}, top-1 agreement "
            f"{parity['top1_agreement']:.4f}"
        )
    generation = (summary.get("tflite") or {}).get("generation") or {}
    for variant, info in (generation.get("variants") or {}).items():
        parity = info["parity"]
        lines.append(
            f"  tflite generation {variant}: {info['bytes']} bytes, greedy "
            f"tokens identical for {parity['identical']} of "
            f"{parity['prompts']} prompts (token agreement "
            f"{parity['token_agreement']:.2f})"
        )
    lines += litert_lm_lines((summary.get("tflite") or {}).get("litert_lm"))
    training = summary.get("training")
    if training and training.get("final_val_nll") is not None:
        lines.append(
            f"  training: {training['epochs']} epochs, final loss "
            f"{training['final_loss']:.4f}, val_nll "
            f"{training['final_val_nll']:.4f}"
            + (
                f", {training['train_tokens_per_second']:.0f} tokens/s"
                if training.get("train_tokens_per_second")
                else ""
            )
            + f"; curves in {training['loss_plot']}"
        )
    if summary.get("pushed"):
        lines.append(f"  pushed: {summary['serving_model_dir']}")
        for path in summary.get("tflite_files", []):
            lines.append(f"  tflite file: {path}")
    else:
        lines.append(f"  NOT pushed: {summary.get('not_pushed_reason')}")
    return "\n".join(lines)
