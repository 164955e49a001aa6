"""An HTTP server speaking TF Serving's REST API over a serving directory.

Routes (model names and `/versions/N` as in TF Serving):

    GET  /v1/models/NAME[/versions/V]             model version status
    GET  /v1/models/NAME[/versions/V]/metadata    signature_def map
    POST /v1/models/NAME[/versions/V]:predict     row or columnar predict
    POST /v1/models/NAME[/versions/V]:generate    text generation (textmill)
    POST /v1/models/NAME[/versions/V]:classify    501 (:regress too)

HTTP is aiohttp's server: its parser refuses bad framing (chunked with a
Content-Length, conflicting Content-Lengths, oversized request lines and
headers), and every answer, its errors included, is `{"error": "..."}`
JSON. Status and metadata are answered on the event loop and never wait
behind inference; model calls go through `Admission` (bounded concurrency,
bounded queue, 503 with Retry-After, 504 past the request deadline), and
`RequestLimits` refuses requests that would cost too much before they reach
a model. Errors name the problem but never a path, an exception's text or
the interpreter. See docs/serving.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import ipaddress
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from urllib.parse import unquote

from aiohttp import web, web_protocol, web_server

from textmill.serving import generate_contract, rest_codec
from textmill.serving.admission import Admission
from textmill.serving.generate_contract import SERVER_SOFTWARE
from textmill.serving.model_repository import ModelRepository
from textmill.serving.request_limits import RequestLimits
from textmill.serving.servable import Servable
from textmill.serving.serving_error import ServingError
from textmill.serving.signatures import GENERATE, SERVING_DEFAULT

logger = logging.getLogger(__name__)

_VERSION = r"(?:/versions/(\d+)|/labels/([^/:]+))?"
_POST_ROUTE = re.compile(
    rf"/v1/models/([^/:]+){_VERSION}:(predict|generate|classify|regress)",
    re.IGNORECASE,
)
_GET_ROUTE = re.compile(
    rf"/v1/models(?:/([^/:]+))?{_VERSION}(?:/(metadata))?", re.IGNORECASE
)
_JSON = "application/json"


def default_max_concurrent() -> int:
    """Model calls run at once by default: half the cores, at least 1.

    TensorFlow spreads one call over several cores, so more calls than this
    queue inside TensorFlow instead of in the server.
    """
    return max(1, (os.cpu_count() or 2) // 2)


def _json_response(
    status: int, text: str, headers: dict | None = None
) -> web.Response:
    response = web.Response(
        status=status, text=text, content_type=_JSON, headers=headers
    )
    response.headers["Server"] = SERVER_SOFTWARE
    return response


def _error_response(error: ServingError) -> web.Response:
    headers = {}
    if error.retry_after:
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return _json_response(
        error.status, json.dumps({"error": error.message}), headers
    )


class _RequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, answering its own errors as JSON."""

    def handle_error(self, request, status=500, exc=None, message=None):
        if status >= 500:
            self.log_exception("HTTP error %s", status, exc_info=exc)
            text = "internal error; see the server log."
        else:
            # The parser's reason, without the echo of the request line.
            reason = str(getattr(exc, "message", None) or message or "")
            reason = reason.strip().split("\n")[0][:200]
            text = f"malformed HTTP request: {reason}".rstrip(": ")
        response = _json_response(status, json.dumps({"error": text}))
        response.force_close()
        return response


class _Server(web_server.Server):
    """aiohttp's low-level server with `_RequestHandler` connections."""

    def __init__(self, handler, max_request_bytes: int, **kwargs):
        super().__init__(handler, **kwargs)
        self._max_request_bytes = max_request_bytes

    def __call__(self) -> _RequestHandler:
        return _RequestHandler(self, loop=self._loop, **self._kwargs)

    def _make_request(self, message, payload, protocol, writer, task):
        return web.BaseRequest(
            message,
            payload,
            protocol,
            writer,
            task,
            self._loop,
            client_max_size=self._max_request_bytes,
        )


class ModelServer:
    """TF Serving's REST API (plus `:generate`) over a ModelRepository.

    Args:
        repository: the models to serve.
        host: address to bind; the loopback interface unless told otherwise
            (any other address logs a warning: put the server behind a
            proxy, or set `auth_token`).
        port: TCP port; 0 picks a free one (see `url` after `start()`).
        poll_seconds: how often the serving directory is rescanned for new
            or removed versions.
        max_request_bytes: the largest request body accepted (413 above).
        max_batch_size: the largest batch accepted on a batched input.
        limits: the cost limits (`RequestLimits`); its defaults if None.
        max_concurrent: model calls run at once; `default_max_concurrent()`
            if None.
        max_queue_seconds: the longest a request waits for a model slot
            before 503.
        request_timeout: seconds from a request's arrival to its answer
            (the body read, the queue and the model call); 504 or 408 after.
        idle_timeout: seconds an idle or slow connection (one that has not
            sent a whole request head) is kept open.
        auth_token: when set, every request needs
            `Authorization: Bearer <auth_token>` (401 otherwise).

    Example:

    >>> server = ModelServer(ModelRepository("/srv/models"), port=0)
    >>> server.start()
    >>> server.url
    'http://127.0.0.1:40193'
    >>> server.stop()
    """

    def __init__(
        self,
        repository: ModelRepository,
        host: str = "127.0.0.1",
        port: int = 8501,
        poll_seconds: float = 2.0,
        max_request_bytes: int = 10 * 2**20,
        max_batch_size: int = 256,
        limits: RequestLimits | None = None,
        max_concurrent: int | None = None,
        max_queue_seconds: float = 5.0,
        request_timeout: float = 120.0,
        idle_timeout: float = 15.0,
        auth_token: str | None = None,
    ):
        numbers = {
            "poll_seconds": poll_seconds,
            "max_request_bytes": max_request_bytes,
            "max_batch_size": max_batch_size,
            "request_timeout": request_timeout,
            "idle_timeout": idle_timeout,
        }
        bad = {name: value for name, value in numbers.items() if value <= 0}
        if bad:
            raise ValueError(
                ", ".join(f"{name}={value}" for name, value in bad.items())
                + ": pass positive numbers."
            )
        if auth_token is not None and not auth_token.strip():
            raise ValueError("auth_token is empty; pass a secret or None.")
        self.repository = repository
        self.host = host
        self.port = port
        self.poll_seconds = poll_seconds
        self.max_request_bytes = max_request_bytes
        self.max_batch_size = max_batch_size
        self.limits = limits or RequestLimits()
        self.admission = Admission(
            max_concurrent or default_max_concurrent(), max_queue_seconds
        )
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self._auth = None if auth_token is None else auth_token.strip()
        # Request bodies are parsed and checked here, off the event loop.
        self._decode_pool = concurrent.futures.ThreadPoolExecutor(
            2, thread_name_prefix="decode"
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.ServerRunner | None = None
        self._address: tuple[str, int] | None = None
        self._thread: threading.Thread | None = None
        self._closed: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """`http://HOST:PORT` of the bound server."""
        if self._address is None:
            raise RuntimeError("the server is not bound yet; call start().")
        host, port = self._address
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    # Life cycle.

    async def _open(self) -> None:
        server = _Server(
            self._handle,
            max_request_bytes=self.max_request_bytes,
            # A request whose client disconnects stops waiting (its model
            # call, once started, still runs to the end; see Admission).
            handler_cancellation=True,
            keepalive_timeout=self.idle_timeout,
            lingering_time=2.0,
            access_log=None,
        )
        runner = web.ServerRunner(server, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._address = runner.addresses[0][:2]
        self._closed = asyncio.Event()

    def bind(self) -> None:
        """Opens the socket, loads the current versions, starts polling.

        Raises:
            OSError: the address is taken, or the serving directory does
                not exist (FileNotFoundError).
        """
        self.repository.refresh()
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._open())
        except BaseException:
            self._loop.close()
            self._loop = None
            raise
        self.repository.start_polling(self.poll_seconds)
        if not _is_loopback(self.host):
            logger.warning(
                "Listening on %s, which is not a loopback address: anyone "
                "who can reach it can call the models%s.",
                self.host,
                "" if self._auth else " (no --auth-token-file set)",
            )
        logger.info("Serving %s at %s", self.repository.base_dir, self.url)

    def start(self) -> None:
        """`bind()`, then answers requests in a background thread."""
        self.bind()
        self._thread = threading.Thread(
            target=self._run, name="model-server", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        self._loop.run_until_complete(self._closed.wait())

    def serve_forever(self) -> None:
        """`bind()` if needed, then answers requests until `stop()`."""
        if self._loop is None:
            self.bind()
        self._run()

    def request_stop(self) -> None:
        """Makes `serve_forever()` return; safe from a signal handler."""
        if self._loop is not None and self._closed is not None:
            self._loop.call_soon_threadsafe(self._closed.set)

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._closed.set()

    def stop(self) -> None:
        """Stops answering, closes the socket and stops polling."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            if self._thread is not None and self._thread.is_alive():
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(30)
                self._thread.join(30)
            else:
                loop.run_until_complete(self._close())
            loop.close()
        self._thread = None
        self.admission.shutdown()
        self._decode_pool.shutdown(wait=False, cancel_futures=True)
        self.repository.stop_polling()

    def __enter__(self) -> ModelServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # Requests.

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        path = request.raw_path.partition("?")[0]
        try:
            self._check_auth(request)
            if request.method in ("GET", "HEAD"):
                text = self.handle_get(path)
            elif request.method == "POST":
                text = await self._post(request, path, deadline)
            else:
                raise ServingError(
                    405,
                    f"method {request.method[:20]} is not allowed; use GET "
                    "for status and metadata, POST for inference.",
                )
        except ServingError as e:
            return _error_response(e)
        except ConnectionError:  # the client went away mid-request
            logger.debug("Client left during %s %s", request.method, path)
            return _error_response(
                ServingError(400, "the connection closed mid-request.")
            )
        except Exception:  # the server must answer, whatever failed
            logger.exception("Request %s %s failed", request.method, path)
            return _error_response(
                ServingError(500, "internal error; see the server log.")
            )
        return _json_response(200, text)

    def _check_auth(self, request: web.BaseRequest) -> None:
        if self._auth is None:
            return
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self._auth.encode()
        ):
            raise ServingError(
                401,
                "this server needs 'Authorization: Bearer <token>' with the "
                "token of its --auth-token-file.",
            )

    async def _read_body(self, request: web.BaseRequest, deadline) -> bytes:
        if request.content_length is None and "chunked" not in (
            request.headers.get("Transfer-Encoding", "").lower()
        ):
            raise ServingError(
                411, "POST requests need a Content-Length header."
            )
        limit = self.max_request_bytes
        if (request.content_length or 0) > limit:
            raise _too_large(request.content_length, limit)
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                request.read(), max(0.0, deadline - loop.time())
            )
        except web.HTTPRequestEntityTooLarge:
            raise _too_large("more than " + str(limit), limit) from None
        except asyncio.TimeoutError:
            raise ServingError(
                408,
                "the request body did not arrive before the request's "
                "deadline (--request-timeout); send the whole body at once.",
            ) from None

    async def _post(self, request, path: str, deadline: float) -> str:
        raw = await self._read_body(request, deadline)
        loop = asyncio.get_running_loop()
        prepared = await loop.run_in_executor(
            self._decode_pool, self.prepare_post, path, raw
        )
        servable, signature_name, inputs, finish = prepared
        outputs = await self.admission.run(
            lambda: servable.run(signature_name, inputs), deadline
        )
        return await loop.run_in_executor(self._decode_pool, finish, outputs)

    def _servable(self, name, version, label) -> Servable:
        if label is not None:
            raise ServingError(
                404,
                f"version label '{label}' is not configured on this server; "
                f"address a version as /v1/models/{name}/versions/N.",
            )
        return self.repository.servable(
            unquote(name), None if version is None else int(version)
        )

    def handle_get(self, path: str) -> str:
        """Answers a GET path with JSON text (raises ServingError)."""
        match = _GET_ROUTE.fullmatch(path)
        if match is None:
            raise self._malformed("GET", path)
        name, version, label, metadata = match.groups()
        if name is None:
            served = ", ".join(self.repository.model_names) or "none"
            raise ServingError(
                400,
                "Missing model name in request: GET /v1/models/NAME; models "
                f"served: {served}.",
            )
        if metadata is not None:
            return json.dumps(self._servable(name, version, label).metadata())
        if label is not None:
            self._servable(name, version, label)
        return json.dumps(
            self.repository.status(
                unquote(name), None if version is None else int(version)
            )
        )

    def prepare_post(
        self, path: str, raw_body: bytes
    ) -> tuple[Servable, str, dict, Callable[[dict], str]]:
        """Routes, parses and checks a POST before any model runs.

        Args:
            path: the request path.
            raw_body: the request body.

        Returns:
            `(servable, signature_name, inputs, finish)`: what to call, and
            the function that turns its outputs into the response JSON.

        Raises:
            ServingError: 4xx for requests that cannot be answered.
        """
        match = _POST_ROUTE.fullmatch(path)
        if match is None:
            raise self._malformed("POST", path)
        name, version, label, method = match.groups()
        method = method.lower()
        if method in ("classify", "regress"):
            raise ServingError(
                501,
                f":{method} is not implemented by this server; call :predict "
                "with the signature's inputs instead.",
            )
        servable = self._servable(name, version, label)
        body = rest_codec.parse_json_object(raw_body)
        if method == "predict":
            return self._predict(servable, body)
        return self._generate(servable, body)

    @staticmethod
    def _malformed(method: str, path: str) -> ServingError:
        shown = path if len(path) <= 100 else path[:97] + "..."
        if not path.lower().startswith("/v1/"):
            return ServingError(404, f"no route {method} {shown}; see /v1/.")
        return ServingError(
            400,
            f"Malformed request: {method} {shown}. Routes: GET /v1/models/"
            "NAME[/versions/V][/metadata], POST /v1/models/NAME[/versions/V]"
            ":predict|:generate.",
        )

    @staticmethod
    def _signature_name(body: dict, default: str) -> str:
        key = generate_contract.SIGNATURE_NAME_KEY
        if key not in body:
            return default
        name = body[key]
        if not isinstance(name, str) or not name:
            raise ServingError(
                400,
                f"'signature_name' must be a non-empty string, got "
                f"{json.dumps(name)[:60]}; leave it out for '{default}'.",
            )
        return name

    def _predict(self, servable: Servable, body: dict):
        signature_name = self._signature_name(body, SERVING_DEFAULT)
        signature = servable.signature(signature_name)
        inputs, row_format = rest_codec.decode_predict_request(
            body, signature, signature_name, self.max_batch_size
        )
        self.limits.check(inputs)
        return (
            servable,
            signature_name,
            inputs,
            lambda outputs: rest_codec.encode_predict_response(
                outputs, row_format
            ),
        )

    def _generate(self, servable: Servable, body: dict):
        signature_name = self._signature_name(body, GENERATE)
        signature = servable.signature(signature_name)
        try:
            prompt, completion = generate_contract.generate_io_names(
                signature, signature_name
            )
        except ValueError as e:
            raise ServingError(400, str(e)) from None
        prompts = body.get(generate_contract.PROMPTS_KEY)
        if (
            not isinstance(prompts, list)
            or not prompts
            or not all(isinstance(p, str) for p in prompts)
        ):
            raise ServingError(
                400,
                "'prompts' must be a non-empty list of strings, got "
                f"{json.dumps(prompts)[:60]}.",
            )
        settings = {
            key: value
            for key, value in body.items()
            if key
            not in (
                generate_contract.PROMPTS_KEY,
                generate_contract.SIGNATURE_NAME_KEY,
            )
        }
        if prompt in settings:
            raise ServingError(
                400, f"send the prompts under 'prompts', not '{prompt}'."
            )
        inputs = rest_codec.decode_inputs(
            {prompt: prompts, **settings},
            signature,
            signature_name,
            self.max_batch_size,
        )
        self.limits.check(inputs)

        def finish(outputs: dict) -> str:
            fields = {
                generate_contract.COMPLETIONS_KEY: rest_codec.encode_tensor(
                    outputs.pop(completion)
                )
            }
            for name in sorted(outputs):
                fields[name] = rest_codec.encode_tensor(
                    outputs[name], rest_codec.is_bytes_name(name)
                )
            return rest_codec.encode_object(fields)

        return servable, signature_name, inputs, finish


def _too_large(declared, limit: int) -> ServingError:
    return ServingError(
        413,
        f"request body of {declared} bytes is over the server's limit of "
        f"{limit} bytes (--max-request-bytes); send smaller batches.",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
