"""The compiled Vertex AI pipeline: schema, DAG, images, Dataflow, Vertex AI
Training, runtime parameters, and no path of this machine inside."""

import json
import os
import re
import sys
import tempfile

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx

import textmill
from textmill.config import (
    ConfigError,
    PipelineConfig,
    default_pipeline_name,
    with_overrides,
)
from textmill.families import FAMILIES, get_family
from textmill.pipelines.pipeline import PipelineOverrides, create_pipeline
from textmill.pipelines.vertex import (
    ENDPOINT_PUSHER_ID,
    RUNTIME_PARAMETERS,
    VertexTargetConfig,
    compile_vertex,
)

IMAGE = "us-central1-docker.pkg.dev/proj/textmill/textmill:7"
SERVICE_ACCOUNT = "runner@proj.iam.gserviceaccount.com"
TARGET = VertexTargetConfig(
    project="proj",
    region="us-central1",
    pipeline_root="gs://bucket/textmill",
    image=IMAGE,
    service_account=SERVICE_ACCOUNT,
    dataflow_machine_type="n2-standard-4",
    dataflow_max_workers=8,
    extra_beam_args=("--experiments=use_runner_v2",),
    machine_type="g2-standard-8",
    accelerator_type="NVIDIA_L4",
    accelerator_count=1,
    replica_count=3,
    endpoint_name="textmill-endpoint",
)
BEAM_TASKS = ("TextExampleGen", "StatisticsGen", "Transform")
EXECUTOR_ENTRYPOINT = [
    "python",
    "-m",
    "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor",
]
# Task -> the tasks it waits for.
EXPECTED_DEPENDENCIES = {
    "TextExampleGen": set(),
    "StatisticsGen": {"TextExampleGen"},
    "SchemaGen": {"StatisticsGen"},
    "ExampleValidator": {"SchemaGen", "StatisticsGen"},
    "DataGate": {"ExampleValidator", "StatisticsGen"},
    "Transform": {"DataGate", "SchemaGen", "TextExampleGen"},
    "Trainer": {"SchemaGen", "Transform"},
    "ModelValidator": {
        "Trainer",
        "Transform",
        "latest_blessed_model_resolver-model-resolver",
    },
    "TFLiteExport": {"Trainer", "Transform"},
    "ServingPusher": {"ModelValidator", "TFLiteExport", "Trainer"},
    ENDPOINT_PUSHER_ID: {"ModelValidator", "Trainer"},
}


def expected_dependencies(family: str) -> dict:
    """The DAG of `family`: pair-based families read SentencePairGen's
    output instead of TextExampleGen's."""
    expected = dict(EXPECTED_DEPENDENCIES)
    if get_family(family).sentence_pairs:
        expected["SentencePairGen"] = {"TextExampleGen"}
        expected["StatisticsGen"] = {"SentencePairGen"}
        expected["Transform"] = {"DataGate", "SchemaGen", "SentencePairGen"}
    return expected


def beam_tasks(family: str) -> tuple:
    extra = ("SentencePairGen",) if get_family(family).sentence_pairs else ()
    return BEAM_TASKS + extra


def config_for(family: str) -> PipelineConfig:
    return with_overrides(
        PipelineConfig(family=family),
        top={"serving_dir": "gs://bucket/serving"},
        ingest={"input_patterns": ["gs://bucket/corpus/*.jsonl.gz"]},
        train={"train_steps": 40},
        validation={"max_perplexity": 900.0},
    )


@pytest.fixture(scope="module", params=list(FAMILIES))
def compiled(request, tmp_path_factory):
    """(family, path, job dict) of each family's compiled pipeline."""
    path = tmp_path_factory.mktemp(request.param) / "pipeline.json"
    job = compile_vertex(config_for(request.param), TARGET, str(path))
    return request.param, path, job


def tasks_of(job: dict) -> dict:
    return job["pipelineSpec"]["root"]["dag"]["tasks"]


def container_of(job: dict, task: str) -> dict:
    spec = job["pipelineSpec"]
    label = spec["components"][task]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]["container"]


def constant(job: dict, task: str, parameter: str):
    value = tasks_of(job)[task]["inputs"]["parameters"][parameter]
    return value["runtimeValue"]["constant"]


def test_written_file_parses_into_the_kfp_pipeline_spec_protos(compiled):
    _, path, job = compiled
    text = path.read_text()
    assert json.loads(text) == job
    message = pipeline_spec_pb2.PipelineJob()
    json_format.Parse(text, message)  # rejects unknown fields
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(job["pipelineSpec"], spec)
    assert spec.schema_version == "2.1.0"
    assert spec.sdk_version.startswith("tfx-")
    assert message.runtime_config.gcs_output_directory == (
        "gs://bucket/textmill/pipeline_root"
    )
    for name, task in spec.root.dag.tasks.items():
        assert task.component_ref.name in spec.components, name


def test_dag_has_every_step_and_its_dependencies(compiled):
    family, _, job = compiled
    tasks = tasks_of(job)
    assert job["pipelineSpec"]["pipelineInfo"]["name"] == (
        default_pipeline_name(family)
    )
    expected = expected_dependencies(family)
    for task, upstream in expected.items():
        assert set(tasks[task].get("dependentTasks", [])) == upstream, task
    resolvers = {t for t in tasks if t.startswith("latest_blessed_model")}
    assert set(tasks) == set(expected) | resolvers
    assert len(resolvers) == 2


def test_every_step_runs_the_image(compiled):
    family, _, job = compiled
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = [
        e["container"] for e in executors.values() if "container" in e
    ]
    assert len(containers) == len(expected_dependencies(family))
    for container in containers:
        assert container["image"] == IMAGE
        assert container["command"] == EXECUTOR_ENTRYPOINT


def test_beam_steps_run_on_dataflow(compiled):
    family, _, job = compiled
    for task in beam_tasks(family):
        args = container_of(job, task)["args"]
        for expected in (
            "--runner=DataflowRunner",
            "--project=proj",
            "--region=us-central1",
            "--temp_location=gs://bucket/textmill/dataflow/tmp",
            "--staging_location=gs://bucket/textmill/dataflow/staging",
            f"--sdk_container_image={IMAGE}",
            f"--service_account_email={SERVICE_ACCOUNT}",
            "--machine_type=n2-standard-4",
            "--max_num_workers=8",
            "--experiments=use_runner_v2",
        ):
            assert expected in args, (task, expected)
        assert not any(a.startswith("--direct_") for a in args), task


def test_without_dataflow_beam_keeps_the_direct_runner(tmp_path):
    target = VertexTargetConfig(
        project="proj",
        region="europe-west4",
        pipeline_root="gs://bucket/root",
        image=IMAGE,
        dataflow=False,
    )
    job = compile_vertex(
        config_for("distilgpt2"), target, str(tmp_path / "p.json")
    )
    args = container_of(job, "TextExampleGen")["args"]
    assert "--direct_running_mode=multi_processing" in args
    assert not any("Dataflow" in a for a in args)


def test_trainer_runs_on_vertex_ai_training_with_worker_pools(compiled):
    family, _, job = compiled
    container = container_of(job, "Trainer")
    assert container["args"][:2] == [
        "--executor_class_path",
        "tfx.extensions.google_cloud_ai_platform.trainer.executor."
        "GenericExecutor",
    ]
    custom = json.loads(constant(job, "Trainer", "custom_config"))
    assert custom["ai_platform_enable_vertex"] is True
    assert custom["ai_platform_vertex_region"] == "us-central1"
    training = custom["ai_platform_training_args"]
    assert training["project"] == "proj"
    assert training["job_spec"]["service_account"] == SERVICE_ACCOUNT
    pools = training["job_spec"]["worker_pool_specs"]
    assert [pool["replica_count"] for pool in pools] == [1, 2]
    for pool in pools:
        assert pool["machine_spec"] == {
            "machine_type": "g2-standard-8",
            "accelerator_type": "NVIDIA_L4",
            "accelerator_count": 1,
        }
        assert pool["container_spec"] == {"image_uri": IMAGE}
    # The run_fn's own settings travel beside the Vertex keys.
    assert custom["family"] == family
    assert custom["train"]["train_steps"] == 40
    assert custom["checkpoint_root"] == "gs://bucket/textmill/checkpoints"


def test_one_replica_is_a_single_pool_without_accelerator(tmp_path):
    target = VertexTargetConfig(
        project="proj",
        region="us-central1",
        pipeline_root="gs://bucket/root",
        image=IMAGE,
    )
    job = compile_vertex(
        config_for("distilgpt2"), target, str(tmp_path / "p.json")
    )
    custom = json.loads(constant(job, "Trainer", "custom_config"))
    job_spec = custom["ai_platform_training_args"]["job_spec"]
    assert job_spec["worker_pool_specs"] == [
        {
            "machine_spec": {"machine_type": "n1-standard-8"},
            "replica_count": 1,
            "container_spec": {"image_uri": IMAGE},
        }
    ]
    assert "service_account" not in job_spec
    assert ENDPOINT_PUSHER_ID not in tasks_of(job)


def test_pushes_to_gcs_and_deploys_to_the_endpoint(compiled):
    family, _, job = compiled
    assert constant(job, "ServingPusher", "serving_dir") == (
        "gs://bucket/serving"
    )
    assert constant(job, "ServingPusher", "model_name") == family
    custom = json.loads(constant(job, ENDPOINT_PUSHER_ID, "custom_config"))
    assert custom["ai_platform_enable_vertex"] is True
    assert custom["ai_platform_vertex_region"] == "us-central1"
    assert custom["ai_platform_vertex_container_image_uri"] == (
        "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
    )
    assert custom["ai_platform_serving_args"] == {
        "project_id": "proj",
        "endpoint_name": "textmill-endpoint",
        "machine_type": "n1-standard-4",
        "min_replica_count": 1,
        "max_replica_count": 1,
    }
    inputs = tasks_of(job)[ENDPOINT_PUSHER_ID]["inputs"]["artifacts"]
    assert inputs["model_blessing"]["taskOutputArtifact"] == {
        "producerTask": "ModelValidator",
        "outputArtifactKey": "blessing",
    }


def test_per_run_values_are_runtime_parameters(compiled):
    _, _, job = compiled
    declared = job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    assert {name: p["parameterType"] for name, p in declared.items()} == {
        "input_patterns": "STRING",
        "train_args": "STRING",
        "max_perplexity": "NUMBER_DOUBLE",
        "max_regression": "NUMBER_DOUBLE",
    }
    defaults = job["runtimeConfig"]["parameterValues"]
    assert json.loads(defaults["input_patterns"]) == [
        "gs://bucket/corpus/*.jsonl.gz"
    ]
    assert json.loads(defaults["train_args"]) == {"num_steps": 40}
    assert defaults["max_perplexity"] == 900.0
    assert defaults["max_regression"] == 0.05
    for name, target in RUNTIME_PARAMETERS.items():
        task, parameter = target.split(".")
        bound = tasks_of(job)[task]["inputs"]["parameters"][parameter]
        assert bound == {"componentInputParameter": name}


def test_ingest_is_never_cached_and_the_rest_is(compiled):
    _, _, job = compiled
    for name in EXPECTED_DEPENDENCIES:
        task = tasks_of(job)[name]
        cached = task.get("cachingOptions", {}).get("enableCache", False)
        assert cached == (name != "TextExampleGen"), name


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_nothing_points_at_this_machine(compiled):
    _, path, job = compiled
    local = {
        "/work",
        "/tmp",
        "/home",
        "/root",
        os.getcwd(),
        os.path.expanduser("~"),
        tempfile.gettempdir(),
        sys.prefix,
        os.path.dirname(textmill.__file__),
        str(path.parent),
    }
    local = {prefix for prefix in local if len(prefix) > 1}
    for text in _strings(job):
        # Strings inside strings (JSON-encoded parameters) count too.
        text = re.sub(r"gs://\S+", "gs://", text)
        for prefix in local:
            assert prefix not in text, (prefix, text[:200])


@pytest.mark.parametrize(
    "change, match",
    [
        (
            {"ingest": {"input_patterns": ["data/*.txt"]}},
            r"ingest.input_patterns\[0\] is 'data/\*.txt'",
        ),
        ({"top": {"serving_dir": "/srv/models"}}, "serving_dir"),
        ({"train": {"init_from": "presets/gpt2"}}, "train.init_from"),
    ],
)
def test_local_paths_are_refused(tmp_path, change, match):
    config = with_overrides(config_for("distilgpt2"), **change)
    with pytest.raises(ConfigError, match=match):
        compile_vertex(config, TARGET, str(tmp_path / "p.json"))
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"pipeline_root": "/data/root"}, "pipeline_root must be a gs://"),
        ({"accelerator_type": "NVIDIA_L4"}, "accelerator_count=0 disagree"),
        ({"replica_count": 0}, "replica_count must be >= 1"),
        ({"image": ""}, "--image"),
        ({"endpoint_min_replicas": 2}, "endpoint_max_replicas"),
    ],
)
def test_target_validation_names_the_field(fields, match):
    values = dict(
        project="proj",
        region="us-central1",
        pipeline_root="gs://bucket/root",
        image=IMAGE,
    )
    values.update(fields)
    with pytest.raises(ConfigError, match=match):
        VertexTargetConfig(**values).validate()


def test_local_pipeline_is_unchanged_without_overrides():
    pipeline = create_pipeline(config_for("distilgpt2").validate())
    trainer = next(c for c in pipeline.components if c.id == "Trainer")
    assert type(trainer) is tfx.components.Trainer
    assert (
        "ai_platform_training_args"
        not in trainer.exec_properties["custom_config"]
    )
    for component in pipeline.components:
        for value in component.exec_properties.values():
            assert not isinstance(value, tfx.dsl.experimental.RuntimeParameter)


def test_runtime_parameter_with_unknown_target_is_named():
    overrides = PipelineOverrides(
        runtime_parameters={"steps": "Trainer.num_steps"}
    )
    with pytest.raises(ValueError, match="'steps' targets 'Trainer.num_"):
        create_pipeline(
            config_for("distilgpt2").validate(), overrides=overrides
        )
