"""Vertex AI: compiles the pipeline, submits runs and creates schedules.

The compiled pipeline is the local one (`create_pipeline`) with what the
cloud needs: Beam steps on Dataflow, the Trainer on Vertex AI Training
(machine type, accelerators, worker pools for multi-worker training), the
values that change per run as runtime parameters, and, optionally, the
blessed model deployed to a Vertex AI endpoint beside its push to the TF
Serving layout on GCS.

Runs and schedules go through the Vertex AI SDK (`google-cloud-aiplatform`)
over its REST transport; `pipeline_job_request` and `schedule_request` give
the exact REST request without sending it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from google.cloud import aiplatform, aiplatform_v1
from google.protobuf import json_format
from tfx import v1 as tfx

from textmill.components.model_validator.component import (
    MAX_PERPLEXITY_KEY,
    MAX_REGRESSION_KEY,
)
from textmill.components.text_example_gen.spec import INPUT_PATTERNS_KEY
from textmill.config import ConfigError, PipelineConfig
from textmill.pipelines.pipeline import PipelineOverrides, create_pipeline

gcp = tfx.extensions.google_cloud_ai_platform

# Runtime parameter name -> the execution parameter it sets ("Id.name").
RUNTIME_PARAMETERS = {
    "input_patterns": f"TextExampleGen.{INPUT_PATTERNS_KEY}",
    "train_args": "Trainer.train_args",
    "max_perplexity": f"ModelValidator.{MAX_PERPLEXITY_KEY}",
    "max_regression": f"ModelValidator.{MAX_REGRESSION_KEY}",
}
# Ingest is never served from Vertex's cache: its cache key holds the input
# patterns, not the files, so new files under the same pattern would be
# missed (the local driver fingerprints the files; Vertex runs no driver).
UNCACHED_TASKS = ("TextExampleGen",)
ENDPOINT_PUSHER_ID = "VertexEndpointPusher"
_SERVING_IMAGE = "{geo}-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
_API_HOST = "https://{region}-aiplatform.googleapis.com"
_API_VERSION = "v1"


@dataclasses.dataclass(frozen=True)
class VertexTargetConfig:
    """Where and on what the pipeline runs on Google Cloud.

    Args:
        project: Google Cloud project id.
        region: Vertex AI region, e.g. "us-central1".
        pipeline_root: gs:// directory of the runs: TFX artifacts go to
            `<pipeline_root>/pipeline_root`, Trainer checkpoints to
            `<pipeline_root>/checkpoints`, Dataflow files to
            `<pipeline_root>/dataflow`.
        image: container image every step runs (see the Dockerfile); it is
            also the Dataflow workers' SDK container and the Vertex AI
            Training image.
        service_account: service account of Dataflow workers and training
            replicas ("" = the project's defaults); the pipeline run's own
            account is chosen at submit time.
        dataflow: run Beam steps on Dataflow; False keeps the config's Beam
            arguments (the DirectRunner inside each step's container).
        dataflow_region: Dataflow region ("" = `region`).
        dataflow_temp_location: gs:// temp directory ("" = under
            pipeline_root).
        dataflow_staging_location: gs:// staging directory ("" = under
            pipeline_root).
        dataflow_machine_type: worker machine type ("" = Dataflow's default).
        dataflow_max_workers: autoscaling ceiling (0 = Dataflow's default).
        extra_beam_args: more Beam arguments, appended to the Dataflow ones
            (e.g. "--network=N"), or, without Dataflow, to the config's
            (e.g. "--runner=FlinkRunner", "--flink_master=HOST:8081").
        machine_type: machine of each training replica.
        accelerator_type: e.g. "NVIDIA_TESLA_T4", "NVIDIA_L4" ("" = none).
        accelerator_count: accelerators per replica.
        replica_count: training replicas; above 1, a chief pool and a
            worker pool train with MultiWorkerMirroredStrategy.
        endpoint_name: Vertex AI endpoint that a blessed model is deployed
            to ("" = push to GCS only).
        endpoint_machine_type: machine type of the endpoint's replicas.
        endpoint_min_replicas: fewest serving replicas.
        endpoint_max_replicas: most serving replicas.
        serving_image: prediction container of the endpoint ("" = Vertex's
            prebuilt TensorFlow CPU container nearest to `region`).

    Example:

    ```python
    target = VertexTargetConfig(
        project="my-project",
        region="us-central1",
        pipeline_root="gs://my-bucket/textmill",
        image="us-central1-docker.pkg.dev/my-project/textmill/textmill:1",
        accelerator_type="NVIDIA_L4",
        accelerator_count=1,
        machine_type="g2-standard-8",
    )
    compile_vertex(config, target, "pipeline.json")
    ```
    """

    project: str
    region: str
    pipeline_root: str
    image: str
    service_account: str = ""
    dataflow: bool = True
    dataflow_region: str = ""
    dataflow_temp_location: str = ""
    dataflow_staging_location: str = ""
    dataflow_machine_type: str = ""
    dataflow_max_workers: int = 0
    extra_beam_args: tuple[str, ...] = ()
    machine_type: str = "n1-standard-8"
    accelerator_type: str = ""
    accelerator_count: int = 0
    replica_count: int = 1
    endpoint_name: str = ""
    endpoint_machine_type: str = "n1-standard-4"
    endpoint_min_replicas: int = 1
    endpoint_max_replicas: int = 1
    serving_image: str = ""

    def validate(self) -> VertexTargetConfig:
        """Checks every field; returns self so calls can chain.

        Raises:
            ConfigError: naming the field, the value and the fix.
        """
        for name in ("project", "region", "image", "machine_type"):
            if not getattr(self, name):
                raise ConfigError(
                    f"vertex {name} is empty: pass --{name.replace('_', '-')}."
                )
        for name in (
            "pipeline_root",
            "dataflow_temp_location",
            "dataflow_staging_location",
        ):
            value = getattr(self, name)
            if (value or name == "pipeline_root") and not value.startswith(
                "gs://"
            ):
                raise ConfigError(
                    f"vertex {name} must be a gs:// path, got {value!r}: "
                    "Vertex AI steps cannot read this machine's files."
                )
        if (self.accelerator_count > 0) != bool(self.accelerator_type):
            raise ConfigError(
                f"vertex accelerator_type={self.accelerator_type!r} and "
                f"accelerator_count={self.accelerator_count} disagree: set "
                "both (e.g. NVIDIA_TESLA_T4 and 1) or neither."
            )
        for name in ("replica_count", "endpoint_min_replicas"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"vertex {name} must be >= 1, got {getattr(self, name)}."
                )
        if self.endpoint_max_replicas < self.endpoint_min_replicas:
            raise ConfigError(
                f"vertex endpoint_max_replicas ({self.endpoint_max_replicas})"
                f" is below endpoint_min_replicas "
                f"({self.endpoint_min_replicas}); raise it."
            )
        if self.dataflow_max_workers < 0:
            raise ConfigError(
                f"vertex dataflow_max_workers must be >= 0, got "
                f"{self.dataflow_max_workers}."
            )
        return self

    def beam_pipeline_args(self) -> tuple[str, ...]:
        """The Dataflow runner arguments every Beam step receives."""
        root = self.pipeline_root.rstrip("/")
        args = [
            "--runner=DataflowRunner",
            f"--project={self.project}",
            f"--region={self.dataflow_region or self.region}",
            "--temp_location="
            + (self.dataflow_temp_location or f"{root}/dataflow/tmp"),
            "--staging_location="
            + (self.dataflow_staging_location or f"{root}/dataflow/staging"),
            f"--sdk_container_image={self.image}",
        ]
        if self.service_account:
            args.append(f"--service_account_email={self.service_account}")
        if self.dataflow_machine_type:
            args.append(f"--machine_type={self.dataflow_machine_type}")
        if self.dataflow_max_workers:
            args.append(f"--max_num_workers={self.dataflow_max_workers}")
        return (*args, *self.extra_beam_args)

    def worker_pool_specs(self) -> list[dict[str, Any]]:
        """Vertex AI CustomJob worker pools: the chief, then the workers."""
        machine_spec = {"machine_type": self.machine_type}
        if self.accelerator_count:
            machine_spec["accelerator_type"] = self.accelerator_type
            machine_spec["accelerator_count"] = self.accelerator_count
        # One chief; the other replicas form the second pool.
        pools = [1] + (
            [self.replica_count - 1] if self.replica_count > 1 else []
        )
        return [
            {
                "machine_spec": dict(machine_spec),
                "replica_count": replicas,
                "container_spec": {"image_uri": self.image},
            }
            for replicas in pools
        ]

    def trainer_custom_config(self) -> dict[str, Any]:
        """The Vertex AI Trainer's keys of the Trainer's custom_config."""
        job_spec: dict[str, Any] = {
            "worker_pool_specs": self.worker_pool_specs()
        }
        if self.service_account:
            job_spec["service_account"] = self.service_account
        return {
            gcp.ENABLE_VERTEX_KEY: True,
            gcp.VERTEX_REGION_KEY: self.region,
            gcp.TRAINING_ARGS_KEY: {
                "project": self.project,
                "job_spec": job_spec,
            },
        }

    def endpoint_custom_config(self) -> dict[str, Any]:
        """The custom_config of the Vertex AI endpoint Pusher."""
        geo = self.region.split("-")[0]
        geo = geo if geo in ("europe", "asia") else "us"
        return {
            gcp.ENABLE_VERTEX_KEY: True,
            gcp.VERTEX_REGION_KEY: self.region,
            gcp.VERTEX_CONTAINER_IMAGE_URI_KEY: (
                self.serving_image or _SERVING_IMAGE.format(geo=geo)
            ),
            gcp.SERVING_ARGS_KEY: {
                "project_id": self.project,
                "endpoint_name": self.endpoint_name,
                "machine_type": self.endpoint_machine_type,
                "min_replica_count": self.endpoint_min_replicas,
                "max_replica_count": self.endpoint_max_replicas,
            },
        }


def _check_cloud_paths(config: PipelineConfig) -> None:
    """Every path a Vertex step reads or writes must be on GCS."""
    paths = {
        "work_dir": config.work_dir,
        "serving_dir": config.serving_dir,
        "tokenizer.init_from": config.tokenizer.init_from,
        "train.init_from": config.train.init_from,
        "train.distill_from": config.train.distill_from,
    }
    paths.update(
        (f"ingest.input_patterns[{i}]", pattern)
        for i, pattern in enumerate(config.ingest.input_patterns)
    )
    for name, path in paths.items():
        require_cloud_path(name, path)


def require_cloud_path(name: str, path: str | None) -> None:
    """Raises ConfigError unless `path` is empty or on Cloud Storage."""
    if path and not path.startswith("gs://"):
        raise ConfigError(
            f"{name} is {path!r}, which is not on Cloud Storage, so "
            "Vertex AI steps cannot read it: copy it to a bucket and "
            "pass its gs:// path."
        )


def _runtime_defaults(pipeline: tfx.dsl.Pipeline) -> dict[str, Any]:
    """Runtime parameter name -> default, from the pipeline's components."""
    return {
        value.name: value.default
        for component in pipeline.components
        for value in component.exec_properties.values()
        if isinstance(value, tfx.dsl.experimental.RuntimeParameter)
    }


def vertex_pipeline(
    config: PipelineConfig, target: VertexTargetConfig
) -> tfx.dsl.Pipeline:
    """The pipeline of `config` as it runs on Vertex AI (see module doc).

    `target.pipeline_root` replaces `config.work_dir`, and the Dataflow
    arguments (when `target.dataflow`) replace `config.beam_pipeline_args`.

    Raises:
        ConfigError: a field of either config is invalid, or a path of
            `config` is not on GCS.
    """
    target.validate()
    config = dataclasses.replace(
        config,
        work_dir=target.pipeline_root.rstrip("/"),
        beam_pipeline_args=(
            target.beam_pipeline_args()
            if target.dataflow
            else config.beam_pipeline_args + target.extra_beam_args
        ),
    ).validate()
    _check_cloud_paths(config)

    def deploy_to_endpoint(model, blessing):
        return gcp.Pusher(
            model=model,
            model_blessing=blessing,
            custom_config=target.endpoint_custom_config(),
        ).with_id(ENDPOINT_PUSHER_ID)

    overrides = PipelineOverrides(
        trainer_class=gcp.Trainer,
        trainer_custom_config=target.trainer_custom_config(),
        runtime_parameters=RUNTIME_PARAMETERS,
        deployers=(deploy_to_endpoint,) if target.endpoint_name else (),
    )
    return create_pipeline(config, None, overrides)


def compile_vertex(
    config: PipelineConfig, target: VertexTargetConfig, output_path: str
) -> dict[str, Any]:
    """Writes the Vertex AI pipeline job spec (JSON) of `config`.

    Args:
        config: the pipeline's configuration; its paths must be gs://.
        target: project, region, image and machines.
        output_path: the JSON file to write.

    Returns:
        The written PipelineJob as a dict (`pipelineSpec`, `runtimeConfig`
        with the runtime parameters' defaults, ...).

    Raises:
        ConfigError: see `vertex_pipeline`.
    """
    pipeline = vertex_pipeline(config, target)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=target.image, use_pipeline_spec_2_1=True
        )
    )
    job = runner.run(
        pipeline,
        parameter_values=_runtime_defaults(pipeline),
        write_out=False,
    )
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    for name in UNCACHED_TASKS:
        tasks[name].pop("cachingOptions", None)
    directory = os.path.dirname(output_path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(output_path, "w", encoding="utf-8") as f:
        json.dump(job, f, indent=2, sort_keys=True)
    logging.info(
        "Wrote the Vertex AI pipeline %s to %s",
        config.pipeline_name,
        output_path,
    )
    return job


def _parameter_value(name: str, raw: str, parameter_type: str) -> Any:
    try:
        if parameter_type == "NUMBER_INTEGER":
            return int(raw)
        if parameter_type == "NUMBER_DOUBLE":
            return float(raw)
    except ValueError:
        raise ConfigError(
            f"runtime parameter {name}={raw!r} is not a number; the "
            f"pipeline declares it {parameter_type}."
        ) from None
    return raw


def parse_parameter_values(
    template_path: str, raw: Mapping[str, str]
) -> dict[str, Any]:
    """Types textual NAME=VALUE runtime parameters by the compiled spec.

    Args:
        template_path: JSON written by `compile_vertex`.
        raw: parameter name -> value as text.

    Returns:
        Parameter name -> int, float or str, as the pipeline declares it.

    Raises:
        ConfigError: an unknown parameter, or a value of the wrong type.
    """
    with open(template_path, encoding="utf-8") as f:
        declared = (
            json.load(f)["pipelineSpec"]["root"]
            .get("inputDefinitions", {})
            .get("parameters", {})
        )
    values = {}
    for name, value in raw.items():
        if name not in declared:
            raise ConfigError(
                f"{template_path} has no runtime parameter {name!r}; it has "
                f"{', '.join(sorted(declared)) or 'none'}."
            )
        values[name] = _parameter_value(
            name, value, declared[name].get("parameterType", "STRING")
        )
    return values


def load_pipeline_job(
    template_path: str,
    project: str,
    region: str,
    *,
    parameter_values: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    enable_caching: bool | None = None,
    job_id: str | None = None,
    display_name: str | None = None,
    credentials=None,
    api_endpoint: str | None = None,
) -> aiplatform.PipelineJob:
    """A Vertex AI PipelineJob of a compiled pipeline, not yet submitted.

    Args:
        template_path: JSON written by `compile_vertex`.
        project: Google Cloud project id.
        region: Vertex AI region.
        parameter_values: runtime parameters that replace the compiled
            defaults.
        labels: the run's labels.
        enable_caching: True/False force step caching on/off; None keeps
            the compiled choice (on, except for ingest).
        job_id: the run's id (default: pipeline name and time).
        display_name: default: the pipeline name.
        credentials: google.auth credentials (default: the environment's).
        api_endpoint: Vertex AI API host (default: the region's).

    Returns:
        The PipelineJob; `submit_pipeline_job` or `create_schedule` send it.
    """
    aiplatform.init(
        project=project,
        location=region,
        credentials=credentials,
        api_endpoint=api_endpoint,
        api_transport="rest",
    )
    with open(template_path, encoding="utf-8") as f:
        name = json.load(f)["pipelineSpec"]["pipelineInfo"]["name"]
    return aiplatform.PipelineJob(
        display_name=display_name or name,
        template_path=template_path,
        job_id=job_id,
        parameter_values=dict(parameter_values or {}),
        enable_caching=enable_caching,
        labels=dict(labels or {}),
        credentials=credentials,
        project=project,
        location=region,
    )


def _parent(job: aiplatform.PipelineJob) -> str:
    return f"projects/{job.project}/locations/{job.location}"


def _request(
    job: aiplatform.PipelineJob,
    api_endpoint: str | None,
    collection: str,
    query: str,
    body: Any,
) -> dict[str, Any]:
    host = api_endpoint or _API_HOST.format(region=job.location)
    if "://" not in host:
        host = "https://" + host
    return {
        "method": "POST",
        "url": f"{host}/{_API_VERSION}/{_parent(job)}/{collection}{query}",
        "body": json_format.MessageToDict(
            type(body).pb(body), use_integers_for_enums=True
        ),
    }


def pipeline_job_request(
    job: aiplatform.PipelineJob,
    service_account: str | None = None,
    api_endpoint: str | None = None,
) -> dict[str, Any]:
    """The REST request `submit_pipeline_job` would send; sends nothing.

    Args:
        job: from `load_pipeline_job`.
        service_account: as for `submit_pipeline_job`.
        api_endpoint: as for `load_pipeline_job`.

    Returns:
        {"method", "url", "body"}: the body is the JSON the REST API
        receives; the url leaves out the transport's own `$alt` query.
    """
    body = aiplatform_v1.PipelineJob.from_json(json.dumps(job.to_dict()))
    if service_account:
        body.service_account = service_account
    return _request(
        job,
        api_endpoint,
        "pipelineJobs",
        f"?pipelineJobId={job.job_id}",
        body,
    )


def submit_pipeline_job(
    job: aiplatform.PipelineJob,
    service_account: str | None = None,
    timeout: float | None = None,
) -> str:
    """Creates the run on Vertex AI Pipelines.

    Args:
        job: from `load_pipeline_job`.
        service_account: the run's service account (default: the project's
            Compute Engine default account).
        timeout: seconds to wait for the create request.

    Returns:
        The run's resource name.
    """
    job.submit(service_account=service_account, create_request_timeout=timeout)
    return job.resource_name


def _schedule(job: aiplatform.PipelineJob, display_name: str):
    return aiplatform.PipelineJobSchedule(
        pipeline_job=job,
        display_name=display_name,
        credentials=job.credentials,
        project=job.project,
        location=job.location,
    )


def schedule_request(
    job: aiplatform.PipelineJob,
    cron: str,
    display_name: str,
    *,
    service_account: str | None = None,
    max_concurrent_run_count: int = 1,
    max_run_count: int | None = None,
    api_endpoint: str | None = None,
) -> dict[str, Any]:
    """The REST request `create_schedule` would send; sends nothing.

    Args:
        job, cron, display_name, service_account, max_concurrent_run_count,
            max_run_count: as for `create_schedule`.
        api_endpoint: as for `load_pipeline_job`.

    Returns:
        {"method", "url", "body"}, as `pipeline_job_request`.
    """
    body = aiplatform_v1.Schedule.from_json(
        json.dumps(_schedule(job, display_name).to_dict())
    )
    body.cron = cron
    body.max_concurrent_run_count = max_concurrent_run_count
    if max_run_count:
        body.max_run_count = max_run_count
    if service_account:
        body.create_pipeline_job_request.pipeline_job.service_account = (
            service_account
        )
    return _request(job, api_endpoint, "schedules", "", body)


def create_schedule(
    job: aiplatform.PipelineJob,
    cron: str,
    display_name: str,
    *,
    service_account: str | None = None,
    max_concurrent_run_count: int = 1,
    max_run_count: int | None = None,
    timeout: float | None = None,
) -> str:
    """Creates a Vertex AI schedule that starts `job` on `cron`.

    Args:
        job: from `load_pipeline_job`.
        cron: e.g. "0 3 * * *", or "TZ=Europe/Paris 0 3 * * *".
        display_name: the schedule's name.
        service_account: the runs' service account.
        max_concurrent_run_count: runs allowed at the same time.
        max_run_count: stop after this many runs (None: never).
        timeout: seconds to wait for the create request.

    Returns:
        The schedule's resource name.
    """
    schedule = _schedule(job, display_name)
    schedule.create(
        cron=cron,
        max_concurrent_run_count=max_concurrent_run_count,
        max_run_count=max_run_count,
        service_account=service_account,
        create_request_timeout=timeout,
    )
    return schedule.resource_name
