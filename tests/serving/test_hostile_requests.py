"""Hostile requests to `textmill serve`, on loopback only.

Each case gets a JSON 4xx/5xx naming the problem, and the server keeps
answering. Every socket has a timeout and every loop a bound.
"""

import json
import socket
import threading
import time

import pytest

from textmill.serving.model_repository import ModelRepository
from textmill.serving.model_server import ModelServer
from textmill.serving.request_limits import RequestLimits

HOST = "127.0.0.1"  # never any other address
SOCKET_SECONDS = 30
LIMITS = RequestLimits(
    max_string_bytes=64,
    max_new_tokens=16,
    max_num_beams=4,
    max_top_k=10,
    max_decode_rows=8,
)


@pytest.fixture(scope="module")
def serving_dir(tmp_path_factory, save_tiny_model):
    base = tmp_path_factory.mktemp("serving")
    save_tiny_model(str(base / "lm" / "1"), 2.0)
    return base


def _server(serving_dir, **kwargs) -> ModelServer:
    return ModelServer(
        ModelRepository(str(serving_dir)),
        host=HOST,
        port=0,
        poll_seconds=0.5,
        max_request_bytes=4096,
        max_batch_size=8,
        limits=LIMITS,
        **kwargs,
    )


@pytest.fixture(scope="module")
def server(serving_dir):
    with _server(serving_dir, idle_timeout=2.0, request_timeout=5.0) as s:
        yield s


def _port(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _exchange(server, data: bytes, pause_after: int | None = None):
    """Sends raw bytes, reads until the server closes -> (status, headers,
    body text)."""
    with socket.create_connection(
        (HOST, _port(server)), timeout=SOCKET_SECONDS
    ) as sock:
        sock.sendall(data)
        chunks = []
        while len(chunks) < 10_000:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0] else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body.decode("utf-8", "replace")


def _request(method, path, body=b"", extra="", length=True) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n{extra}"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "Connection: close\r\n\r\n").encode("latin-1") + body


def _post_json(server, body, route=":generate"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return _exchange(server, _request("POST", "/v1/models/lm" + route, data))


def _still_serving(server):
    status, headers, body = _exchange(
        server, _request("GET", "/v1/models/lm", length=False)
    )
    assert status == 200, body
    assert json.loads(body)["model_version_status"][0]["state"] == ("AVAILABLE")


def _assert_json_error(answer, status, needle):
    code, headers, body = answer
    assert code == status, body
    assert headers["content-type"].startswith("application/json")
    assert needle in json.loads(body)["error"], body


STATUS = "/v1/models/lm"


@pytest.mark.parametrize(
    "data, status, needle",
    [
        (_request("TRACE", STATUS, length=False), 405, "method TRACE"),
        (_request("BREW", STATUS, length=False), 400, "Invalid method"),
        (_request("DELETE", STATUS, length=False), 405, "use GET"),
        (
            _request("GET", STATUS, extra=f"X-Big: {'a' * 20000}\r\n"),
            400,
            "malformed HTTP request",
        ),
        (_request("GET", "/v1/" + "m" * 20000), 400, "malformed HTTP"),
        (
            _request(
                "POST",
                STATUS + ":generate",
                b"0\r\n\r\n",
                extra="Transfer-Encoding: chunked\r\n",
            ),
            400,
            "malformed HTTP request",
        ),
        (
            _request(
                "POST",
                STATUS + ":generate",
                b"{}",
                extra="Content-Length: 3\r\n",
            ),
            400,
            "malformed HTTP request",
        ),
        (
            _request(
                "POST",
                STATUS + ":generate",
                b"{}",
                extra="Content-Length: \u00b2\r\n",
                length=False,
            ),
            400,
            "malformed HTTP request",
        ),
        (
            _request("POST", STATUS + ":predict", length=False),
            411,
            "Content-Length",
        ),
        (
            _request("POST", STATUS + ":predict", b"x" * 5000),
            413,
            "--max-request-bytes",
        ),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, "malformed"),
    ],
    ids=[
        "trace",
        "unknown-method",
        "delete",
        "oversized-header",
        "oversized-uri",
        "chunked-with-content-length",
        "two-content-lengths",
        "superscript-content-length",
        "no-content-length",
        "body-over-limit",
        "tls-hello",
    ],
)
def test_bad_http_gets_json(server, data, status, needle):
    _assert_json_error(_exchange(server, data), status, needle)
    _still_serving(server)


@pytest.mark.parametrize(
    "body, status, needle",
    [
        (b'{"prompts": ["\\ud800"], "max_new_tokens": 1}', 400, "surrogate"),
        (
            b'{"prompts": ["a"], "max_new_tokens": '
            + b"[" * 900
            + b"1"
            + b"]" * 900
            + b"}",
            400,
            "nested 900 deep",
        ),
        (b"[" * 100_000, 413, "--max-request-bytes"),
        (b"[" * 4000, 400, "JSON Parse error"),
        ({"prompts": ["a"], "max_new_tokens": 0}, 400, "in [1, 16]"),
        ({"prompts": ["a"], "max_new_tokens": -5}, 400, "is -5"),
        ({"prompts": ["a"], "max_new_tokens": 10**9}, 400, "--max-new-tokens"),
        ({"prompts": ["a" * 65], "max_new_tokens": 1}, 400, "65 bytes"),
        (
            {"prompts": ["a"], "max_new_tokens": 1, "signature_name": ""},
            400,
            "non-empty string",
        ),
        (
            {"prompts": ["a"], "max_new_tokens": 1, "signature_name": None},
            400,
            "non-empty string",
        ),
        (
            {
                "prompts": ["a"],
                "max_new_tokens": 1,
                "num_beams": 5,
                "signature_name": "generate_beam",
            },
            400,
            "num_beams is 5; the server takes num_beams in [1, 4]",
        ),
        (
            {
                "prompts": ["a"] * 3,
                "max_new_tokens": 1,
                "num_beams": 4,
                "signature_name": "generate_beam",
            },
            400,
            "decodes 12 rows",
        ),
    ],
    ids=[
        "lone-surrogate",
        "nested-900-deep",
        "body-over-limit",
        "json-too-deep",
        "max-new-tokens-0",
        "max-new-tokens-negative",
        "max-new-tokens-huge",
        "prompt-too-long",
        "empty-signature-name",
        "null-signature-name",
        "too-many-beams",
        "batch-times-beams",
    ],
)
def test_hostile_bodies_get_json_400s(server, body, status, needle):
    _assert_json_error(_post_json(server, body), status, needle)
    _still_serving(server)


def test_answers_reveal_no_paths_or_interpreter(server, serving_dir):
    for answer in (
        _exchange(server, _request("GET", "/v1/models/nope")),
        _post_json(server, {"prompts": ["a"]}, route=":nope"),
        _exchange(server, _request("GET", STATUS)),
    ):
        status, headers, body = answer
        assert str(serving_dir) not in body
        assert headers["server"] == "textmill-model-server"
        assert "python" not in json.dumps(headers).lower()


def test_head_answers_json_headers_only(server):
    status, headers, body = _exchange(server, _request("HEAD", STATUS))
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert body == ""


def test_slow_and_truncated_clients_are_dropped(server):
    port = _port(server)
    # One header byte at a time: closed after --idle-timeout (2 s here).
    closed = threading.Event()

    def slow_client():
        with socket.create_connection((HOST, port), timeout=30) as sock:
            for byte in b"GET /v1/models/lm HTTP/1.1\r\nHost: x\r\n":
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    closed.set()
                    return
                time.sleep(0.5)
            sock.settimeout(10)
            try:
                closed.set() if not sock.recv(1) else None
            except OSError:
                closed.set()

    client = threading.Thread(target=slow_client, daemon=True)
    client.start()
    # A body that stops half way: 408 once the request deadline passes.
    answer = _exchange(
        server,
        b"POST /v1/models/lm:generate HTTP/1.1\r\nHost: x\r\n"
        b'Content-Length: 100\r\n\r\n{"prompts": ',
    )
    _assert_json_error(answer, 408, "--request-timeout")
    _still_serving(server)
    client.join(60)
    assert closed.is_set()


def test_abandoned_request_leaves_the_server_serving(server):
    for _ in range(5):
        with socket.create_connection((HOST, _port(server)), timeout=10) as s:
            s.sendall(
                _request(
                    "POST",
                    STATUS + ":predict",
                    json.dumps(
                        {"signature_name": "busy", "inputs": 200_000}
                    ).encode(),
                )
            )
    _still_serving(server)


def test_bearer_token(serving_dir):
    with _server(serving_dir, auth_token="s3cret") as server:
        _assert_json_error(
            _exchange(server, _request("GET", STATUS)), 401, "Bearer"
        )
        wrong = "Authorization: Bearer nope\r\n"
        _assert_json_error(
            _exchange(server, _request("GET", STATUS, extra=wrong)),
            401,
            "--auth-token-file",
        )
        right = "Authorization: Bearer s3cret\r\n"
        status, _, body = _exchange(
            server, _request("GET", STATUS, extra=right)
        )
        assert status == 200, body


def test_busy_server_answers_504_then_503_and_status_stays_prompt(
    serving_dir,
):
    with _server(
        serving_dir,
        max_concurrent=1,
        max_queue_seconds=0.2,
        request_timeout=1.0,
    ) as server:
        # About 10 s of graph work: far past the 1 s deadline.
        slow = {"signature_name": "busy", "inputs": 100_000_000}
        _assert_json_error(
            _post_json(server, slow, ":predict"), 504, "deadline"
        )
        # The timed-out call still holds the only slot.
        status, headers, body = _post_json(
            server, {"prompts": ["a"], "max_new_tokens": 1}
        )
        assert status == 503, body
        assert int(headers["retry-after"]) >= 1
        assert "--max-concurrent 1" in json.loads(body)["error"]
        _still_serving(server)
        assert server.admission.busy == 1
