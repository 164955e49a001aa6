"""A bounded load test of `textmill serve` on loopback.

16 clients call the models while slow clients trickle headers, others
abandon requests, a new version is pushed atomically and another is copied
file by file. Every request must get its expected answer, status must keep
answering, and the process's memory must stay bounded. Latencies are
printed (run with -s), never asserted beyond hang guards.
"""

import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

from textmill.serving.model_repository import ModelRepository
from textmill.serving.model_server import ModelServer

HOST = "127.0.0.1"  # never any other address
CLIENTS = 16
REQUESTS_PER_CLIENT = 25
HANG_GUARD_SECONDS = 120


def _rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _post(url: str, body: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return (
                response.status,
                dict(response.headers),
                json.loads(response.read()),
            )
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def test_sixteen_clients_with_slow_and_abandoned_ones(
    tmp_path, save_tiny_model
):
    base = tmp_path / "serving"
    save_tiny_model(str(base / "lm" / "1"), 2.0)
    source = tmp_path / "export"
    save_tiny_model(str(source), 5.0)
    server = ModelServer(
        ModelRepository(str(base)),
        host=HOST,
        port=0,
        poll_seconds=0.2,
        max_concurrent=4,
        max_queue_seconds=30.0,
        idle_timeout=2.0,
    )
    errors, answered, retried = [], [0], [0]
    status_seconds = []
    stop = threading.Event()
    with server:
        port = int(server.url.rsplit(":", 1)[1])
        rss_before = _rss_mib()

        published = threading.Event()

        def client(index: int):
            # At least REQUESTS_PER_CLIENT, and on until both versions are
            # published and the copied one is served (bounded).
            for step in range(20 * REQUESTS_PER_CLIENT):
                if step >= REQUESTS_PER_CLIENT and published.is_set():
                    break
                if step % 2:
                    url = server.url + "/v1/models/lm:generate"
                    body = {"prompts": [f"c{index}"], "max_new_tokens": 3}
                else:
                    url = server.url + "/v1/models/lm:predict"
                    body = {"instances": [[1, 1, 1]]}
                for _ in range(10):  # bounded retries after 503
                    status, headers, answer = _post(url, body)
                    if status != 503:
                        break
                    retried[0] += 1
                    time.sleep(float(headers.get("Retry-After", 1)))
                expected = (
                    {"completions": [f"c{index}!!!"]} if step % 2 else None
                )
                ok = status == 200 and (
                    answer == expected
                    if expected
                    else answer["predictions"][0]["y"][0] in (2.0, 3.0, 5.0)
                )
                if ok:
                    answered[0] += 1
                    if status == 200 and not step % 2:
                        if answer["predictions"][0]["y"][0] == 5.0:
                            published.set()
                else:
                    errors.append((status, answer))

        def slow_client():
            while not stop.is_set():
                with socket.create_connection((HOST, port), timeout=10) as s:
                    try:
                        for byte in b"GET /v1/models/lm HTTP/1.1\r\n":
                            s.sendall(bytes([byte]))
                            if stop.wait(1.0):
                                break
                    except OSError:
                        pass  # closed by the server's idle timeout

        def abandoning_client():
            for _ in range(20):
                with socket.create_connection((HOST, port), timeout=10) as s:
                    body = json.dumps(
                        {"prompts": ["gone"], "max_new_tokens": 5}
                    ).encode()
                    s.sendall(
                        b"POST /v1/models/lm:generate HTTP/1.1\r\n"
                        b"Host: x\r\nContent-Length: "
                        + str(len(body)).encode()
                        + b"\r\n\r\n"
                        + body
                    )
                if stop.wait(0.2):
                    return

        def status_prober():
            url = server.url + "/v1/models/lm"
            while not stop.is_set() and len(status_seconds) < 5000:
                started = time.monotonic()
                with urllib.request.urlopen(url, timeout=60) as response:
                    assert response.status == 200
                    response.read()
                status_seconds.append(time.monotonic() - started)
                stop.wait(0.05)

        def publisher():
            stop.wait(0.3)
            staging = base / "lm" / ".incoming-2"
            save_tiny_model(str(staging), 3.0)
            os.rename(staging, base / "lm" / "2")  # atomic swap
            stop.wait(0.5)
            (base / "lm" / "3").mkdir()  # a copy file by file
            shutil.copy(source / "saved_model.pb", base / "lm" / "3")
            stop.wait(0.5)
            shutil.copytree(source / "variables", base / "lm" / "3" / "vars")
            os.rename(
                base / "lm" / "3" / "vars", base / "lm" / "3" / "variables"
            )

        background = [
            threading.Thread(target=target, daemon=True)
            for target in (
                slow_client,
                slow_client,
                abandoning_client,
                status_prober,
                publisher,
            )
        ]
        clients = [
            threading.Thread(target=client, args=(i,), daemon=True)
            for i in range(CLIENTS)
        ]
        started = time.monotonic()
        for thread in background + clients:
            thread.start()
        for thread in clients:
            thread.join(HANG_GUARD_SECONDS)
        elapsed = time.monotonic() - started
        stop.set()
        for thread in background:
            thread.join(HANG_GUARD_SECONDS)
        rss_after = _rss_mib()
        final = _post(
            server.url + "/v1/models/lm:predict", {"instances": [[1, 1, 1]]}
        )

    print(
        f"\nload: {answered[0]} answered, {len(errors)} errors, "
        f"{retried[0]} retries after 503 in {elapsed:.1f} s; status max "
        f"{max(status_seconds) * 1000:.0f} ms, median "
        f"{sorted(status_seconds)[len(status_seconds) // 2] * 1000:.0f} ms "
        f"over {len(status_seconds)} probes; RSS {rss_before:.0f} -> "
        f"{rss_after:.0f} MiB"
    )
    assert not errors, errors[:5]
    assert answered[0] >= CLIENTS * REQUESTS_PER_CLIENT
    assert published.is_set()
    assert not any(thread.is_alive() for thread in clients)
    assert final[0] == 200 and final[2]["predictions"][0]["y"][0] == 5.0
    assert status_seconds and max(status_seconds) < HANG_GUARD_SECONDS
    assert rss_after - rss_before < 1024  # MiB: bounded, not a leak
