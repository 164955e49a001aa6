"""`textmill serve`: TF Serving's REST API over real SavedModels, on loopback.

Every test talks HTTP to a real server bound to 127.0.0.1 on a free port.
"""

import base64
import http.client
import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from textmill.pipelines.cli import main
from textmill.serving.client import ServingClient
from textmill.serving.model_repository import ModelRepository
from textmill.serving.model_server import ModelServer
from textmill.serving.rest_codec import encode_tensor
from textmill.serving.serve_process import start_serve
from textmill.serving.serving_error import ServingError

MAX_REQUEST_BYTES = 4096
MAX_BATCH_SIZE = 8
WAIT_SECONDS = 60


def _http(url, method="GET", body=None, raw=None):
    """-> (status, parsed JSON) for one request."""
    data = raw if raw is not None else body
    if isinstance(data, dict):
        data = json.dumps(data).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _wait_for(condition, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {WAIT_SECONDS}s waiting for {what}")


@pytest.fixture(scope="module")
def serving_dir(tmp_path_factory, save_tiny_model):
    base = tmp_path_factory.mktemp("serving")
    save_tiny_model(str(base / "lm" / "1"), 2.0)
    return base


@pytest.fixture(scope="module")
def server(serving_dir):
    server = ModelServer(
        ModelRepository(str(serving_dir)),
        port=0,
        poll_seconds=0.2,
        max_request_bytes=MAX_REQUEST_BYTES,
        max_batch_size=MAX_BATCH_SIZE,
    )
    with server:
        yield server


def test_binds_loopback_and_reports_status(server):
    assert server.url.startswith("http://127.0.0.1:")
    expected = {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert _http(server.url + "/v1/models/lm") == (200, expected)
    assert _http(server.url + "/v1/models/lm/versions/1") == (200, expected)


def test_metadata_has_tf_serving_shape(server):
    status, metadata = _http(server.url + "/v1/models/lm/metadata")
    assert status == 200
    assert metadata["model_spec"] == {
        "name": "lm",
        "version": "1",
        "signature_name": "",
    }
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "generate", "text_stats"} <= set(signatures)
    x = signatures["serving_default"]["inputs"]["x"]
    assert x["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in x["tensor_shape"]["dim"]] == ["-1", "3"]
    generate = signatures["generate"]
    assert generate["inputs"]["max_new_tokens"]["tensor_shape"]["dim"] == []
    assert generate["outputs"]["completion"]["dtype"] == "DT_STRING"
    assert generate["method_name"] == "tensorflow/serving/predict"
    versioned = _http(server.url + "/v1/models/lm/versions/1/metadata")
    assert versioned == (200, metadata)


def test_predict_row_and_columnar(server):
    predict = server.url + "/v1/models/lm:predict"
    rows = [[1, 2, 3], [4, 5, 6.5]]
    assert _http(predict, "POST", {"instances": rows}) == (
        200,
        {
            "predictions": [
                {"total": 6.0, "y": [2.0, 4.0, 6.0]},
                {"total": 15.5, "y": [8.0, 10.0, 13.0]},
            ]
        },
    )
    assert _http(predict, "POST", {"inputs": {"x": rows}}) == (
        200,
        {"outputs": {"total": [6.0, 15.5], "y": [[2, 4, 6], [8, 10, 13]]}},
    )
    # One output: the bare value; a plain value feeds the only input.
    body = {"signature_name": "generate", "inputs": {"prompt": ["a", "bc"]}}
    body["inputs"]["max_new_tokens"] = 2
    assert _http(predict, "POST", body) == (200, {"outputs": ["a!!", "bc!!"]})
    body = {"signature_name": "text_stats", "inputs": ["hey"]}
    assert _http(predict, "POST", body)[1]["outputs"]["length"] == [3]
    row = {"signature_name": "text_stats", "instances": ["hey", "a"]}
    assert _http(predict, "POST", row)[1]["predictions"] == [
        {"first": "h", "first_bytes": {"b64": "aA=="}, "length": 3},
        {"first": "a", "first_bytes": {"b64": "YQ=="}, "length": 1},
    ]


def test_string_tensors_follow_tf_serving(server):
    body = {
        "signature_name": "text_stats",
        "inputs": [{"b64": base64.b64encode(b"\xc3\xa9t\xc3\xa9").decode()}],
    }
    status, answer = _http(server.url + "/v1/models/lm:predict", "POST", body)
    assert status == 200
    # `*_bytes` outputs are base64; text outputs stay text, and a byte that
    # is not UTF-8 on its own becomes U+FFFD instead of breaking the JSON.
    assert answer["outputs"] == {
        "first": ["\ufffd"],
        "first_bytes": [{"b64": base64.b64encode(b"\xc3").decode()}],
        "length": [5],
    }


def test_float_text_is_short_and_keeps_non_finite_values():
    values = np.array([[0.1, np.nan], [-np.inf, 1e-5]], np.float32)
    assert encode_tensor(values) == "[[0.1,NaN],[-Infinity,1e-05]]"
    assert np.array_equal(
        np.array(json.loads(encode_tensor(values)), np.float32),
        values,
        equal_nan=True,
    )


def test_generate_route(server):
    status, answer = _http(
        server.url + "/v1/models/lm/versions/1:generate",
        "POST",
        {"prompts": ["Once", "Twice"], "max_new_tokens": 3},
    )
    assert (status, answer) == (200, {"completions": ["Once!!!", "Twice!!!"]})


@pytest.mark.parametrize(
    "path, body, status, needle",
    [
        (":predict", b"{not json", 400, "JSON Parse error"),
        (":predict", b"[1, 2]", 400, "must be a JSON object"),
        (":predict", {"instances": [[1, 2, 3]], "inputs": []}, 400, "one of"),
        (":predict", {"signature_name": "x"}, 400, "no signature 'x'"),
        (":predict", {"inputs": {"z": [[1, 2, 3]]}}, 400, "unknown input"),
        (":predict", {"inputs": [["a", 2, 3]]}, 400, "takes DT_FLOAT"),
        (":predict", {"inputs": [[1, 2]]}, 400, "got shape [1, 2]"),
        (":predict", {"inputs": [[1, 2, 3], [1]]}, 400, "not a rectangular"),
        (":predict", {"inputs": [[1, 2, 3]] * 9}, 400, "--max-batch-size"),
        (
            ":predict",
            {"inputs": [[1.5] * 3] * 200_000},  # 3.4 MB, refused unread
            413,
            "--max-request-bytes",
        ),
        (
            ":predict",
            {
                "signature_name": "generate",
                "instances": [{"prompt": "a", "max_new_tokens": 2}],
            },
            400,
            "columnar 'inputs' form",
        ),
        (":generate", {"prompts": "a", "max_new_tokens": 1}, 400, "prompts"),
        (":generate", {"prompts": ["a"]}, 400, "missing input"),
        (
            ":generate",
            {"prompts": ["a"], "max_new_tokens": 1, "top_k": 5},
            400,
            "unknown input(s) 'top_k'",
        ),
        (":generate", {"prompts": ["a"], "max_new_tokens": 1.5}, 400, "int"),
        (":classify", {"examples": [{}]}, 501, ":predict"),
    ],
)
def test_bad_requests_get_json_errors(server, path, body, status, needle):
    url = server.url + "/v1/models/lm" + path
    raw = body if isinstance(body, bytes) else None
    code, answer = _http(url, "POST", body=body, raw=raw)
    assert code == status, answer
    assert needle in answer["error"]


@pytest.mark.parametrize(
    "method, path, status, needle",
    [
        ("POST", "/v1/models/nope:predict", 404, "model 'nope' not found"),
        ("GET", "/v1/models/nope", 404, "models served: lm"),
        ("POST", "/v1/models/lm/versions/7:predict", 404, "no version 7"),
        ("GET", "/v1/models/lm/versions/7/metadata", 404, "no version 7"),
        ("GET", "/v1/models/lm/labels/stable", 404, "label 'stable'"),
        ("GET", "/v1/models", 400, "Missing model name"),
        ("GET", "/v1/models/lm:predict", 400, "Malformed request"),
        ("POST", "/v1/models/lm:explain", 400, "Malformed request"),
    ],
)
def test_unknown_models_versions_and_routes(
    server, method, path, status, needle
):
    body = {"instances": [[1, 2, 3]]} if method == "POST" else None
    code, answer = _http(server.url + path, method, body)
    assert code == status, answer
    assert needle in answer["error"]


def test_post_without_content_length_is_refused(server):
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("POST", "/v1/models/lm:predict")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 411
        assert "Content-Length" in json.loads(response.read())["error"]
    finally:
        connection.close()


def test_client_against_server(server):
    client = ServingClient(server.url, "lm")
    assert client.status()["model_version_status"][0]["version"] == "1"
    assert (
        "generate"
        in (client.metadata()["metadata"]["signature_def"]["signature_def"])
    )
    assert client.predict([[1, 1, 1]]) == [{"total": 3.0, "y": [2.0] * 3}]
    assert client.predict(inputs=["ab"], signature_name="text_stats")[
        "length"
    ] == [2]
    assert client.speaks_generate()
    assert client.generate(["x", "yz"], max_new_tokens=2) == ["x!!", "yz!!"]
    # The TF Serving path: :predict on the generate signature.
    tf_serving_style = ServingClient(server.url, "lm", use_generate_route=False)
    assert tf_serving_style.generate(["x"], max_new_tokens=4) == ["x!!!!"]
    with pytest.raises(ServingError) as error:
        ServingClient(server.url, "lm", version=9).generate(["x"], 1)
    assert error.value.status == 404


def test_generate_command(server, capsys):
    argv = ["generate", "--url", server.url, "--model", "lm", "--json"]
    assert main(argv + ["hi", "yo", "--max-new-tokens", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"completions": ["hi!", "yo!"]}
    assert main(argv + ["hi", "--setting", "top_k=3"]) == 1
    assert "unknown input(s) 'top_k'" in capsys.readouterr().err


def test_new_versions_are_served_without_restart(tmp_path, save_tiny_model):
    base = tmp_path / "serving"
    save_tiny_model(str(base / "lm" / "1"), 2.0)
    with ModelServer(
        ModelRepository(str(base)), port=0, poll_seconds=0.2
    ) as server:
        client = ServingClient(server.url, "lm")

        def scale():
            return client.predict([[1, 1, 1]])[0]["y"][0]

        def versions():
            status = client.status()["model_version_status"]
            return [(s["version"], s["state"]) for s in status]

        assert scale() == 2.0
        # A staging directory and a version without saved_model.pb yet are
        # not versions.
        staging = base / "lm" / ".incoming-2-abc"
        save_tiny_model(str(staging), 3.0)
        (base / "lm" / "3" / "variables").mkdir(parents=True)
        time.sleep(1.0)  # several polls
        assert versions() == [("3", "START"), ("1", "AVAILABLE")]

        os.rename(staging, base / "lm" / "2")  # the atomic push
        _wait_for(lambda: scale() == 3.0, "version 2 to be served")
        # The newest is kept.
        assert versions() == [("3", "START"), ("2", "AVAILABLE")]
        shutil.rmtree(base / "lm" / "3")
        code, answer = _http(server.url + "/v1/models/lm/versions/1")
        assert code == 404

        shutil.rmtree(base / "lm" / "2")  # withdrawn: back to version 1
        _wait_for(lambda: scale() == 2.0, "version 1 to be served again")
        assert versions() == [("1", "AVAILABLE")]


def test_version_copied_file_by_file_loads_once_complete(
    tmp_path, save_tiny_model
):
    source = tmp_path / "export"
    save_tiny_model(str(source), 5.0)
    base = tmp_path / "serving"
    save_tiny_model(str(base / "lm" / "1"), 2.0)
    with ModelServer(
        ModelRepository(str(base)), port=0, poll_seconds=0.2
    ) as server:
        client = ServingClient(server.url, "lm")
        # saved_model.pb first, variables/ later: the first loads fail.
        (base / "lm" / "2").mkdir()
        shutil.copy(source / "saved_model.pb", base / "lm" / "2")

        def state_of_2():
            status = client.status()["model_version_status"]
            return {s["version"]: s for s in status}.get("2")

        _wait_for(
            lambda: (state_of_2() or {}).get("state") == "END",
            "version 2 to fail",
        )
        message = state_of_2()["status"]["error_message"]
        assert "failed to load" in message and "retrying" in message
        assert str(base) not in message
        assert client.predict([[1, 1, 1]])[0]["y"][0] == 2.0
        shutil.copytree(source / "variables", base / "lm" / "2" / "variables")
        _wait_for(
            lambda: client.predict([[1, 1, 1]])[0]["y"][0] == 5.0,
            "version 2 to load once complete",
        )
        assert state_of_2()["state"] == "AVAILABLE"


def test_serve_command(serving_dir):
    process, url = start_serve(str(serving_dir), WAIT_SECONDS * 2)
    try:
        assert url.startswith("http://127.0.0.1:"), url
        client = ServingClient(url, "lm")
        assert client.generate(["ok"], max_new_tokens=1) == ["ok!"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(WAIT_SECONDS)


def test_serve_command_names_a_missing_directory(tmp_path, capsys):
    missing = str(tmp_path / "missing")
    assert main(["serve", "--model-dir", missing, "--port", "0"]) == 2
    assert f"serving directory {missing} does not exist" in (
        capsys.readouterr().err
    )
