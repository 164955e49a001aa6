"""The `textmill compile`, `submit` and `schedule` commands (Vertex AI).

`register(subparsers)` adds them to the `textmill` command and returns their
handlers. The heavy imports (TFX, the Vertex AI SDK) happen only when one of
these commands runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable

from textmill.config import ConfigError, PipelineConfig, with_overrides
from textmill.pipelines.config_flags import (
    add_config_flags,
    check_runtime_flags,
    config_from_args,
)

TARGETS = ("vertex",)


def _add_compile_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compile",
        help="compile the pipeline into a Vertex AI pipeline spec (JSON)",
    )
    p.add_argument("--target", choices=TARGETS, default="vertex")
    p.add_argument("--project", required=True, help="Google Cloud project")
    p.add_argument("--region", required=True, help="e.g. us-central1")
    p.add_argument(
        "--pipeline-root",
        required=True,
        metavar="GS_DIR",
        help="gs:// root of artifacts, checkpoints and Dataflow files",
    )
    p.add_argument(
        "--image",
        required=True,
        help="container image of every step (make image)",
    )
    p.add_argument("--output", default="pipeline.json")
    # Runtime parameters take these values as their defaults; the serving
    # dir defaults to the config's gs:// one, else PIPELINE_ROOT/serving.
    add_config_flags(p)
    p.add_argument(
        "--service-account",
        help="service account of Dataflow and training workers",
    )
    dataflow = p.add_argument_group("Dataflow (Beam steps)")
    dataflow.add_argument(
        "--no-dataflow",
        dest="dataflow",
        action="store_false",
        help="run Beam steps inside their step's container instead",
    )
    dataflow.add_argument("--dataflow-region", default="")
    dataflow.add_argument("--dataflow-temp-location", default="")
    dataflow.add_argument("--dataflow-staging-location", default="")
    dataflow.add_argument("--dataflow-machine-type", default="")
    dataflow.add_argument("--dataflow-max-workers", type=int, default=0)
    dataflow.add_argument(
        "--beam-arg",
        dest="extra_beam_args",
        action="append",
        default=[],
        metavar="ARG",
        help="Beam argument appended to those above (or, with "
        "--no-dataflow, to the config's); repeatable",
    )
    training = p.add_argument_group("Vertex AI Training (Trainer)")
    training.add_argument("--machine-type", default="n1-standard-8")
    training.add_argument(
        "--accelerator-type", default="", help="e.g. NVIDIA_TESLA_T4, NVIDIA_L4"
    )
    training.add_argument("--accelerator-count", type=int, default=0)
    training.add_argument(
        "--replica-count",
        type=int,
        default=1,
        help="training replicas; > 1 trains multi-worker",
    )
    endpoint = p.add_argument_group("Vertex AI endpoint (optional)")
    endpoint.add_argument(
        "--endpoint",
        dest="endpoint_name",
        default="",
        help="deploy blessed models to this endpoint (created if missing)",
    )
    endpoint.add_argument("--endpoint-machine-type", default="n1-standard-4")
    endpoint.add_argument("--endpoint-min-replicas", type=int, default=1)
    endpoint.add_argument("--endpoint-max-replicas", type=int, default=1)
    endpoint.add_argument(
        "--serving-image",
        default="",
        help="prediction container (default: Vertex's TensorFlow CPU one)",
    )


def _add_job_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments shared by `submit` and `schedule`."""
    p.add_argument("template", help="pipeline JSON from `textmill compile`")
    p.add_argument("--project", required=True, help="Google Cloud project")
    p.add_argument("--region", required=True, help="e.g. us-central1")
    p.add_argument(
        "--service-account", help="service account the pipeline runs as"
    )
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="K=V",
        help="run label; repeatable",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="run every step, reusing no cached result",
    )
    p.add_argument("--display-name", help="default: the pipeline name")
    add_config_flags(p, runtime_only=True)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any runtime parameter of the template; repeatable",
    )
    p.add_argument(
        "--api-endpoint", help="Vertex AI API host (default: the region's)"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the exact REST request (JSON) and send nothing",
    )


def _add_submit_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "submit", help="start a run of a compiled pipeline on Vertex AI"
    )
    _add_job_arguments(p)
    p.add_argument("--job-id", help="default: pipeline name and time")


def _add_schedule_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "schedule", help="run a compiled pipeline on a cron schedule"
    )
    _add_job_arguments(p)
    p.add_argument(
        "--cron",
        required=True,
        help='e.g. "0 3 * * *" or "TZ=Europe/Paris 0 3 * * *"',
    )
    p.add_argument(
        "--schedule-name", help="default: the pipeline name and the cron"
    )
    p.add_argument("--max-concurrent-runs", type=int, default=1)
    p.add_argument("--max-runs", type=int, help="default: unlimited")


def _key_values(pairs: list[str], flag: str) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"{flag} {pair!r} is not KEY=VALUE; write e.g. {flag} "
                "team=nlp."
            )
        result[key] = value
    return result


def _compile_config(args) -> PipelineConfig:
    config = config_from_args(args)
    if args.serving_dir or config.serving_dir.startswith("gs://"):
        return config
    serving_dir = f"{args.pipeline_root.rstrip('/')}/serving"
    return with_overrides(config, top={"serving_dir": serving_dir})


def _cmd_compile(args) -> int:
    from textmill.pipelines.vertex import VertexTargetConfig, compile_vertex

    target = VertexTargetConfig(
        project=args.project,
        region=args.region,
        pipeline_root=args.pipeline_root,
        image=args.image,
        service_account=args.service_account or "",
        dataflow=args.dataflow,
        dataflow_region=args.dataflow_region,
        dataflow_temp_location=args.dataflow_temp_location,
        dataflow_staging_location=args.dataflow_staging_location,
        dataflow_machine_type=args.dataflow_machine_type,
        dataflow_max_workers=args.dataflow_max_workers,
        extra_beam_args=tuple(args.extra_beam_args),
        machine_type=args.machine_type,
        accelerator_type=args.accelerator_type,
        accelerator_count=args.accelerator_count,
        replica_count=args.replica_count,
        endpoint_name=args.endpoint_name,
        endpoint_machine_type=args.endpoint_machine_type,
        endpoint_min_replicas=args.endpoint_min_replicas,
        endpoint_max_replicas=args.endpoint_max_replicas,
        serving_image=args.serving_image,
    )
    job = compile_vertex(_compile_config(args), target, args.output)
    parameters = job["runtimeConfig"].get("parameterValues", {})
    print(args.output)
    for name, value in sorted(parameters.items()):
        print(f"  runtime parameter {name} = {json.dumps(value)}")
    return 0


# One cron field: numbers, `*`, three-letter month or day names, joined by
# ranges, steps and lists.
_CRON_FIELD = re.compile(r"^(\*|\d+|[A-Za-z]{3})([-/,](\*|\d+|[A-Za-z]{3}))*$")


def check_cron(cron: str) -> None:
    """Raises ConfigError unless `cron` is `[TZ=Zone ]m h dom mon dow`."""
    fields = cron.split()
    if fields and re.match(r"^(CRON_)?TZ=\S+$", fields[0]):
        fields = fields[1:]
    if len(fields) != 5 or not all(map(_CRON_FIELD.match, fields)):
        raise ConfigError(
            f"--cron {cron!r} is not a cron schedule: write five fields, "
            'minute hour day-of-month month day-of-week, e.g. "0 3 * * *" '
            'or "TZ=Europe/Paris 0 3 * * 1-5".'
        )


def _check_job_args(args) -> None:
    """The checks `run` and `compile` make, for the flags of a job.

    Raises:
        ConfigError: naming the flag, the value and the fix.
    """
    from textmill.pipelines.vertex import require_cloud_path

    try:
        with open(args.template, encoding="utf-8") as f:
            json.load(f)["pipelineSpec"]
    except FileNotFoundError:
        raise ConfigError(
            f"{args.template}: no such pipeline template; write one with "
            f"`textmill compile ... --output {args.template}`."
        ) from None
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"{args.template} is not a pipeline template written by "
            "`textmill compile` (no JSON pipelineSpec)."
        ) from None
    check_runtime_flags(args)
    for i, pattern in enumerate(args.data or ()):
        require_cloud_path(f"--data[{i}]", pattern)
    if getattr(args, "cron", None) is not None:
        check_cron(args.cron)


def _runtime_parameters(args) -> dict[str, str]:
    """Runtime parameters of this run, as text, from the friendly flags and
    --param (which wins)."""
    raw = {}
    if args.data:
        raw["input_patterns"] = json.dumps(args.data)
    if args.train_steps is not None:
        raw["train_args"] = json.dumps({"num_steps": args.train_steps})
    for name in ("max_perplexity", "max_regression"):
        if getattr(args, name) is not None:
            raw[name] = repr(getattr(args, name))
    raw.update(_key_values(args.param, "--param"))
    return raw


def _load_job(args):
    from google.auth.credentials import AnonymousCredentials

    from textmill.pipelines.vertex import (
        load_pipeline_job,
        parse_parameter_values,
    )

    _check_job_args(args)
    return load_pipeline_job(
        args.template,
        args.project,
        args.region,
        parameter_values=parse_parameter_values(
            args.template, _runtime_parameters(args)
        ),
        labels=_key_values(args.label, "--label"),
        enable_caching=False if args.no_cache else None,
        job_id=getattr(args, "job_id", None),
        display_name=args.display_name,
        # A dry run sends nothing, so it needs no login.
        credentials=AnonymousCredentials() if args.dry_run else None,
        api_endpoint=args.api_endpoint,
    )


def _report(action: Callable[[], str], what: str) -> int:
    """Runs `action` and prints its result, or why the cloud refused."""
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions

    try:
        print(action())
    except auth_exceptions.DefaultCredentialsError as e:
        print(
            f"textmill: no Google Cloud credentials ({e}); run `gcloud auth "
            "application-default login` or set "
            "GOOGLE_APPLICATION_CREDENTIALS.",
            file=sys.stderr,
        )
        return 1
    except exceptions.GoogleAPICallError as e:
        print(f"textmill: Vertex AI refused the {what}: {e}", file=sys.stderr)
        return 1
    return 0


def _cmd_submit(args) -> int:
    from textmill.pipelines.vertex import (
        pipeline_job_request,
        submit_pipeline_job,
    )

    def action() -> str:
        job = _load_job(args)
        if args.dry_run:
            return json.dumps(
                pipeline_job_request(
                    job, args.service_account, args.api_endpoint
                ),
                indent=2,
                sort_keys=True,
            )
        return submit_pipeline_job(job, args.service_account)

    return _report(action, "run")


def _cmd_schedule(args) -> int:
    from textmill.pipelines.vertex import create_schedule, schedule_request

    def action() -> str:
        job = _load_job(args)
        options = dict(
            cron=args.cron,
            display_name=(
                args.schedule_name
                or f"{job.to_dict()['displayName']} {args.cron}"
            ),
            service_account=args.service_account,
            max_concurrent_run_count=args.max_concurrent_runs,
            max_run_count=args.max_runs,
        )
        if args.dry_run:
            return json.dumps(
                schedule_request(
                    job, api_endpoint=args.api_endpoint, **options
                ),
                indent=2,
                sort_keys=True,
            )
        return create_schedule(job, **options)

    return _report(action, "schedule")


def register(subparsers) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Adds `compile`, `submit` and `schedule` to the `textmill` command.

    Args:
        subparsers: the `add_subparsers()` object of the main parser.

    Returns:
        Command name -> handler(args) returning the exit status.
    """
    _add_compile_parser(subparsers)
    _add_submit_parser(subparsers)
    _add_schedule_parser(subparsers)
    return {
        "compile": _cmd_compile,
        "submit": _cmd_submit,
        "schedule": _cmd_schedule,
    }
