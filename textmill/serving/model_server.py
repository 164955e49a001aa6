"""An HTTP server speaking TF Serving's REST API over a serving directory.

Routes (model names and `/versions/N` as in TF Serving):

    GET  /v1/models/NAME[/versions/V]             model version status
    GET  /v1/models/NAME[/versions/V]/metadata    signature_def map
    POST /v1/models/NAME[/versions/V]:predict     row or columnar predict
    POST /v1/models/NAME[/versions/V]:generate    text generation (textmill)
    POST /v1/models/NAME[/versions/V]:classify    501 (:regress too)

Errors are `{"error": "..."}` with a 4xx status for requests the server
cannot answer (400 malformed or not fitting the signature, 404 unknown model
or version, 411 no Content-Length, 413 body too large) and 500 when the
model itself fails. See docs/serving.md.
"""

from __future__ import annotations

import http.server
import json
import logging
import re
import threading
import time
from urllib.parse import unquote, urlsplit

from textmill.serving import generate_contract, rest_codec
from textmill.serving.generate_contract import SERVER_SOFTWARE
from textmill.serving.model_repository import ModelRepository
from textmill.serving.servable import Servable
from textmill.serving.serving_error import ServingError

logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
_DRAIN_SECONDS = 5.0
_VERSION = r"(?:/versions/(\d+)|/labels/([^/:]+))?"
_POST_ROUTE = re.compile(
    rf"/v1/models/([^/:]+){_VERSION}:(predict|generate|classify|regress)",
    re.IGNORECASE,
)
_GET_ROUTE = re.compile(
    rf"/v1/models(?:/([^/:]+))?{_VERSION}(?:/(metadata))?", re.IGNORECASE
)


def _error_text(message: str) -> str:
    return json.dumps({"error": message})


class _Handler(http.server.BaseHTTPRequestHandler):
    """Parses one request, asks the ModelServer, writes the JSON answer."""

    protocol_version = "HTTP/1.1"
    server_version = SERVER_SOFTWARE
    # Idle keep-alive connections and slow clients give their thread back.
    timeout = 60
    # Bytes of a refused body still to be read (see `_drain`).
    _unread_bytes = 0

    def log_message(self, format, *args):
        logger.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, text: str) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, handle) -> None:
        try:
            status, text = 200, handle()
        except ServingError as e:
            status, text = e.status, _error_text(e.message)
        except Exception as e:  # the server must answer, whatever failed
            logger.exception("Request %s %s failed", self.command, self.path)
            status = 500
            text = _error_text(f"internal error: {type(e).__name__}: {e}")
        self._send(status, text)
        if self._unread_bytes:
            self._drain()

    def _drain(self) -> None:
        """Reads and drops a refused body for a bounded time, so that a
        client still sending it reads the answer instead of a reset."""
        deadline = time.monotonic() + _DRAIN_SECONDS
        self.connection.settimeout(1.0)
        try:
            while self._unread_bytes > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(self._unread_bytes, 2**16))
                if not chunk:
                    break
                self._unread_bytes -= len(chunk)
        except OSError:
            pass  # the client went away or stalled; the connection closes

    def _content_length(self) -> int:
        """The declared body size, refusing bodies over the limit."""
        declared = self.headers.get("Content-Length")
        if declared is None:
            self.close_connection = True
            raise ServingError(
                411, "POST requests need a Content-Length header."
            )
        if not declared.isdigit():
            self.close_connection = True
            raise ServingError(400, f"invalid Content-Length: {declared!r}.")
        limit = self.server.app.max_request_bytes
        if int(declared) > limit:
            self.close_connection = True
            self._unread_bytes = int(declared)
            raise ServingError(
                413,
                f"request body of {declared} bytes is over the server's "
                f"limit of {limit} bytes (--max-request-bytes); send "
                "smaller batches.",
            )
        return int(declared)

    def handle_expect_100(self):
        try:
            self._content_length()
        except ServingError as e:
            self._unread_bytes = 0  # the client waits: nothing was sent
            self._send(e.status, _error_text(e.message))
            return False
        return super().handle_expect_100()

    def do_GET(self):
        self._answer(
            lambda: self.server.app.handle_get(urlsplit(self.path).path)
        )

    def do_POST(self):
        def handle():
            body = self.rfile.read(self._content_length())
            return self.server.app.handle_post(urlsplit(self.path).path, body)

        self._answer(handle)

    def _not_allowed(self):
        self.close_connection = True
        self._send(
            405,
            _error_text(
                f"method {self.command} is not allowed; use GET "
                "for status and metadata, POST for inference."
            ),
        )

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, app: ModelServer):
        self.app = app
        super().__init__(address, _Handler)


class ModelServer:
    """TF Serving's REST API (plus `:generate`) over a ModelRepository.

    Args:
        repository: the models to serve.
        host: address to bind; the loopback interface unless told otherwise.
        port: TCP port; 0 picks a free one (see `url` after `start()`).
        poll_seconds: how often the serving directory is rescanned for new
            or removed versions.
        max_request_bytes: the largest request body accepted (413 above).
        max_batch_size: the largest batch accepted on a batched input.

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
    ):
        if poll_seconds <= 0 or max_request_bytes < 1 or max_batch_size < 1:
            raise ValueError(
                f"poll_seconds ({poll_seconds}), max_request_bytes "
                f"({max_request_bytes}) and max_batch_size ({max_batch_size}) "
                "must be positive."
            )
        self.repository = repository
        self.host = host
        self.port = port
        self.poll_seconds = poll_seconds
        self.max_request_bytes = max_request_bytes
        self.max_batch_size = max_batch_size
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://HOST:PORT` of the bound server."""
        if self._httpd is None:
            raise RuntimeError("the server is not bound yet; call start().")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def bind(self) -> None:
        """Opens the socket, loads the current versions, starts polling.

        Raises:
            OSError: the address is taken, or the serving directory does
                not exist (FileNotFoundError).
        """
        httpd = _HTTPServer((self.host, self.port), self)
        try:
            self.repository.refresh()
        except BaseException:
            httpd.server_close()
            raise
        self._httpd = httpd
        self.repository.start_polling(self.poll_seconds)
        logger.info("Serving %s at %s", self.repository.base_dir, self.url)

    def start(self) -> None:
        """`bind()`, then answers requests in a background thread."""
        self.bind()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="model-server", daemon=True
        )
        self._thread.start()

    def serve_forever(self) -> None:
        """`bind()` if needed, then answers requests until `stop()`."""
        if self._httpd is None:
            self.bind()
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stops answering, closes the socket and stops polling."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self.repository.stop_polling()

    def __enter__(self) -> ModelServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # Routing.

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

    def handle_post(self, path: str, raw_body: bytes) -> str:
        """Answers a POST path and body with JSON text (raises
        ServingError)."""
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
        if not path.lower().startswith("/v1/"):
            return ServingError(404, f"no route {method} {path}; see /v1/.")
        return ServingError(
            400,
            f"Malformed request: {method} {path}. Routes: GET /v1/models/NAME"
            "[/versions/V][/metadata], POST /v1/models/NAME[/versions/V]"
            ":predict|:generate.",
        )

    @staticmethod
    def _signature_name(body: dict, default: str) -> str:
        name = body.get(generate_contract.SIGNATURE_NAME_KEY) or default
        if not isinstance(name, str):
            raise ServingError(
                400, f"'signature_name' must be a string, got {name!r}."
            )
        return name

    def _predict(self, servable: Servable, body: dict) -> str:
        signature_name = self._signature_name(body, DEFAULT_SIGNATURE)
        signature = servable.signature(signature_name)
        inputs, row_format = rest_codec.decode_predict_request(
            body, signature, signature_name, self.max_batch_size
        )
        outputs = servable.run(signature_name, inputs)
        return rest_codec.encode_predict_response(outputs, row_format)

    def _generate(self, servable: Servable, body: dict) -> str:
        signature_name = self._signature_name(
            body, generate_contract.GENERATE_SIGNATURE
        )
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
        outputs = servable.run(signature_name, inputs)
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
