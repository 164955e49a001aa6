"""`textmill compile / submit / schedule`: the Vertex AI SDK's real request
path, sent to a recording HTTP server on 127.0.0.1."""

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import google.auth
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud.aiplatform import initializer

from textmill.pipelines.cli import main

pytestmark = pytest.mark.timeout(300)

PROJECT = "proj"
REGION = "us-central1"
SERVICE_ACCOUNT = "runs@proj.iam.gserviceaccount.com"
PARENT = f"projects/{PROJECT}/locations/{REGION}"


class _Recorder(BaseHTTPRequestHandler):
    """Records each request and answers like Vertex AI and Cloud Storage
    (the SDK checks the pipeline root's bucket before it submits)."""

    def _answer(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append(
            {
                "method": self.command,
                "path": url.path,
                "query": urllib.parse.parse_qs(url.query),
                "body": body,
            }
        )
        status, answer = 200, dict(body)
        if url.path.endswith("/pipelineJobs"):
            job_id = urllib.parse.parse_qs(url.query)["pipelineJobId"][0]
            answer.update(name=f"{PARENT}/pipelineJobs/{job_id}", state=2)
        elif url.path.endswith("/schedules"):
            answer.update(name=f"{PARENT}/schedules/42", state=1)
        elif url.path.startswith("/storage/v1/b/") and (
            self.command == "GET" and "/iam" not in url.path
        ):
            status, answer = 404, {"error": {"code": 404}}  # bucket: create
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def api(monkeypatch):
    """The recording server; every Google API call goes to it, and the
    SDK's global config (set by aiplatform.init) is restored after."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    sdk_config = vars(initializer.global_config)
    saved = dict(sdk_config)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
    monkeypatch.setattr(
        google.auth,
        "default",
        lambda *args, **kwargs: (AnonymousCredentials(), PROJECT),
    )
    server.endpoint = endpoint
    yield server
    sdk_config.clear()
    sdk_config.update(saved)
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("vertex") / "pipeline.json"
    status = main(
        [
            "compile",
            "--family",
            "distilgpt2",
            "--target",
            "vertex",
            "--project",
            PROJECT,
            "--region",
            REGION,
            "--pipeline-root",
            "gs://bucket/root",
            "--image",
            "us-docker.pkg.dev/proj/textmill/textmill:1",
            "--data",
            "gs://bucket/corpus/*.txt",
            "--train-steps",
            "30",
            "--output",
            str(path),
        ]
    )
    assert status == 0
    return str(path)


def job_arguments(template, api, *extra):
    return [
        template,
        "--project",
        PROJECT,
        "--region",
        REGION,
        "--service-account",
        SERVICE_ACCOUNT,
        "--label",
        "team=nlp",
        "--api-endpoint",
        api.endpoint,
        *extra,
    ]


def vertex_requests(api):
    return [r for r in api.requests if r["path"].startswith("/v1/")]


def test_compile_prints_the_file_and_its_runtime_parameters(template, capsys):
    with open(template) as f:
        job = json.load(f)
    assert job["runtimeConfig"]["gcsOutputDirectory"] == (
        "gs://bucket/root/pipeline_root"
    )
    serving_dir = job["pipelineSpec"]["root"]["dag"]["tasks"]["ServingPusher"][
        "inputs"
    ]["parameters"]["serving_dir"]
    assert serving_dir["runtimeValue"]["constant"] == "gs://bucket/root/serving"
    assert json.loads(
        job["runtimeConfig"]["parameterValues"]["train_args"]
    ) == {"num_steps": 30}


def test_compile_refuses_a_local_data_path(tmp_path, capsys):
    status = main(
        [
            "compile",
            "--project",
            PROJECT,
            "--region",
            REGION,
            "--pipeline-root",
            "gs://bucket/root",
            "--image",
            "img:1",
            "--data",
            "corpus/*.txt",
            "--output",
            str(tmp_path / "p.json"),
        ]
    )
    assert status == 2
    assert "ingest.input_patterns[0] is 'corpus/*.txt'" in (
        capsys.readouterr().err
    )


def test_submit_sends_the_pipeline_job(template, api, capsys):
    status = main(
        [
            "submit",
            *job_arguments(
                template,
                api,
                "--job-id",
                "nightly-1",
                "--no-cache",
                "--data",
                "gs://bucket/new/*.txt",
                "--data",
                "gs://bucket/b/*.gz",
                "--train-steps",
                "7",
                "--max-perplexity",
                "50",
                "--param",
                "max_regression=0.2",
            ),
        ]
    )
    assert status == 0
    assert capsys.readouterr().out.strip() == (
        f"{PARENT}/pipelineJobs/nightly-1"
    )
    [request] = vertex_requests(api)
    assert request["method"] == "POST"
    assert request["path"] == f"/v1/{PARENT}/pipelineJobs"
    assert request["query"]["pipelineJobId"] == ["nightly-1"]
    body = request["body"]
    assert body["displayName"] == "textmill-distilgpt2"
    assert body["serviceAccount"] == SERVICE_ACCOUNT
    assert body["labels"] == {"team": "nlp"}
    runtime = body["runtimeConfig"]
    assert runtime["gcsOutputDirectory"] == "gs://bucket/root/pipeline_root"
    values = runtime["parameterValues"]
    assert json.loads(values["input_patterns"]) == [
        "gs://bucket/new/*.txt",
        "gs://bucket/b/*.gz",
    ]
    assert json.loads(values["train_args"]) == {"num_steps": 7}
    assert values["max_perplexity"] == 50.0
    assert values["max_regression"] == 0.2
    with open(template) as f:
        compiled = json.load(f)["pipelineSpec"]
    tasks = body["pipelineSpec"]["root"]["dag"]["tasks"]
    assert set(tasks) == set(compiled["root"]["dag"]["tasks"])
    assert body["pipelineSpec"]["deploymentSpec"] == compiled["deploymentSpec"]
    # --no-cache: no step is served from the cache.
    assert not any(
        t.get("cachingOptions", {}).get("enableCache") for t in tasks.values()
    )


def test_submit_keeps_the_compiled_caching_by_default(template, api):
    assert main(["submit", *job_arguments(template, api)]) == 0
    [request] = vertex_requests(api)
    tasks = request["body"]["pipelineSpec"]["root"]["dag"]["tasks"]
    assert tasks["Trainer"]["cachingOptions"]["enableCache"] is True
    assert "cachingOptions" not in tasks["TextExampleGen"]
    values = request["body"]["runtimeConfig"]["parameterValues"]
    assert json.loads(values["input_patterns"]) == ["gs://bucket/corpus/*.txt"]


def test_submit_dry_run_prints_exactly_what_submit_sends(template, api, capsys):
    arguments = job_arguments(
        template, api, "--job-id", "run-9", "--max-perplexity", "75"
    )
    assert main(["submit", *arguments, "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert api.requests == []  # the dry run sent nothing
    assert main(["submit", *arguments]) == 0
    [sent] = vertex_requests(api)
    assert printed["method"] == sent["method"]
    assert printed["url"] == (
        f"{api.endpoint}/v1/{PARENT}/pipelineJobs?pipelineJobId=run-9"
    )
    assert printed["body"] == sent["body"]


def test_schedule_sends_cron_and_the_run_request(template, api, capsys):
    status = main(
        [
            "schedule",
            *job_arguments(
                template,
                api,
                "--cron",
                "TZ=Europe/Paris 0 3 * * *",
                "--schedule-name",
                "nightly",
                "--max-runs",
                "30",
                "--train-steps",
                "9",
            ),
        ]
    )
    assert status == 0
    assert capsys.readouterr().out.strip() == f"{PARENT}/schedules/42"
    [request] = vertex_requests(api)
    assert request["method"] == "POST"
    assert request["path"] == f"/v1/{PARENT}/schedules"
    body = request["body"]
    assert body["displayName"] == "nightly"
    assert body["cron"] == "TZ=Europe/Paris 0 3 * * *"
    assert body["maxConcurrentRunCount"] == "1"
    assert body["maxRunCount"] == "30"
    run = body["createPipelineJobRequest"]
    assert run["parent"] == PARENT
    assert run["pipelineJob"]["serviceAccount"] == SERVICE_ACCOUNT
    assert run["pipelineJob"]["labels"] == {"team": "nlp"}
    values = run["pipelineJob"]["runtimeConfig"]["parameterValues"]
    assert json.loads(values["train_args"]) == {"num_steps": 9}


def test_schedule_dry_run_prints_exactly_what_schedule_sends(
    template, api, capsys
):
    arguments = job_arguments(
        template, api, "--cron", "0 3 * * *", "--no-cache"
    )
    assert main(["schedule", *arguments, "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert api.requests == []
    assert main(["schedule", *arguments]) == 0
    [sent] = vertex_requests(api)
    assert printed["url"] == f"{api.endpoint}/v1/{PARENT}/schedules"
    assert printed["body"] == sent["body"]
    assert printed["body"]["displayName"] == ("textmill-distilgpt2 0 3 * * *")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--param", "steps=3"], "has no runtime parameter 'steps'"),
        (["--param", "max_regression=low"], "max_regression='low' is not"),
        (["--label", "team"], "--label 'team' is not KEY=VALUE"),
    ],
)
def test_bad_run_arguments_are_named(template, api, capsys, extra, message):
    assert main(["submit", *job_arguments(template, api, *extra)]) == 2
    assert message in capsys.readouterr().err
    assert api.requests == []
