"""`textmill generate` against servers that answer badly (loopback only).

A scripted socket server sends each malformed reply; the client reports it
in one line, within its total deadline, without a traceback.
"""

import socket
import threading
import time

import pytest

from textmill.pipelines.cli import main
from textmill.serving.client import ServingClient
from textmill.serving.serving_error import ServingError

HOST = "127.0.0.1"  # never any other address


def _http_reply(status_line: str, body: bytes, length: int | None = None):
    length = len(body) if length is None else length
    return (
        f"HTTP/1.1 {status_line}\r\nServer: textmill-model-server\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body


class _ScriptedServer:
    """Answers every connection with the same bytes, then closes (or
    stalls for `stall` seconds first)."""

    def __init__(self, reply: bytes, stall: float = 0.0):
        self.reply = reply
        self.stall = stall
        self.sock = socket.create_server((HOST, 0))
        self.sock.settimeout(0.2)
        self.url = f"http://{HOST}:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(5)
                try:
                    connection.recv(65536)
                    self._stop.wait(self.stall)
                    connection.sendall(self.reply)
                except OSError:
                    pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        self.sock.close()


@pytest.mark.parametrize(
    "reply, needle",
    [
        (_http_reply("200 OK", b'{"outputs": []}'), "no list of completions"),
        (
            _http_reply("200 OK", b'{"completions": ["a", "b"]}'),
            "2 completions for 1 prompt(s)",
        ),
        (_http_reply("200 OK", b'{"completions": [7]}'), "a completion is 7"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not HTTP"),
        (_http_reply("200 OK", b'{"completions"', length=100), "cut short"),
        (_http_reply("200 OK", b"<html>hi</html>"), "<html>hi</html>"),
        (_http_reply("503 Busy", b'{"error": "busy"}'), "HTTP 503: busy"),
    ],
    ids=[
        "no-completions",
        "wrong-count",
        "not-strings",
        "not-http",
        "truncated",
        "html",
        "error",
    ],
)
def test_malformed_replies_are_one_line_errors(reply, needle, capsys):
    with _ScriptedServer(reply) as server:
        client = ServingClient(
            server.url, "lm", timeout=10, use_generate_route=True
        )
        with pytest.raises(ServingError) as error:
            client.generate(["x"], 1)
        assert needle in str(error.value)
        argv = ["generate", "--url", server.url, "--model", "lm", "x"]
        assert main(argv + ["--timeout", "10"]) == 1
        err = capsys.readouterr().err
        assert needle in err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_timeout_is_total_not_per_read():
    # Headers at once, then the body never comes: a per-read timeout would
    # wait on each read; the total deadline ends the call.
    reply = _http_reply("200 OK", b"", length=10)
    with _ScriptedServer(reply, stall=0.0) as server:
        client = ServingClient(
            server.url, "lm", timeout=1.0, use_generate_route=True
        )
        started = time.monotonic()
        with pytest.raises(ServingError) as error:
            client.generate(["x"], 1)
        # A hang guard, not a timing assertion.
        assert time.monotonic() - started < 30
        assert "cut short" in str(error.value) or "within 1 s" in str(
            error.value
        )
    with _ScriptedServer(b"", stall=30.0) as server:
        client = ServingClient(
            server.url, "lm", timeout=1.0, use_generate_route=True
        )
        with pytest.raises(ServingError, match="within 1 s"):
            client.generate(["x"], 1)


def test_unreachable_server_is_one_line(capsys):
    with socket.create_server((HOST, 0)) as sock:
        port = sock.getsockname()[1]
    argv = ["generate", "--url", f"http://{HOST}:{port}", "--model", "lm"]
    assert main(argv + ["x", "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach" in err and err.count("\n") == 1
