"""A REST client for textmill's model server and for TF Serving."""

from __future__ import annotations

import base64
import http.client
import json
import time
from urllib.parse import quote, urlsplit

from textmill.serving import generate_contract
from textmill.serving.serving_error import ServingError
from textmill.serving.signatures import GENERATE

_MAX_ANSWER_BYTES = 256 * 2**20


def _text(value) -> str:
    """A string output as text: `{"b64": ...}` objects are decoded."""
    if isinstance(value, dict) and isinstance(value.get("b64"), str):
        try:
            value = base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise _bad_answer("a completion is not valid base64") from None
        return value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise _bad_answer(f"a completion is {json.dumps(value)[:40]}")
    return value


def _bad_answer(what: str) -> ServingError:
    return ServingError(
        0, f"the server's answer is malformed: {what}; is it a model server?"
    )


class ServingClient:
    """Talks to `textmill serve` or TF Serving over the REST API.

    `generate()` uses textmill's `:generate` route when the server has it,
    and otherwise calls `:predict` on the `generate` signature, so the same
    code works against TF Serving (where models are served unchanged).
    Standard library only.

    Args:
        url: the server's base URL, e.g. `http://127.0.0.1:8501`.
        model_name: the served model's name.
        version: a version to address, or None for the newest.
        timeout: seconds a whole call may take (connecting, sending, the
            server's work and reading the answer).
        use_generate_route: True or False to force or avoid `:generate`;
            None asks the server once (its `Server` header) whether it has
            the route.

    Example:

    >>> client = ServingClient("http://127.0.0.1:8501", "distilgpt2")
    >>> client.generate(["The river"], max_new_tokens=16)
    [' was high and the ...']
    """

    def __init__(
        self,
        url: str,
        model_name: str,
        version: int | None = None,
        timeout: float = 60.0,
        use_generate_route: bool | None = None,
    ):
        self.url = url.rstrip("/")
        self.model_name = model_name
        self.version = version
        self.timeout = timeout
        self.use_generate_route = use_generate_route

    @property
    def _model_path(self) -> str:
        path = f"/v1/models/{quote(self.model_name, safe='')}"
        if self.version is not None:
            path += f"/versions/{int(self.version)}"
        return path

    def _send(
        self, method: str, path: str, body: dict | None = None
    ) -> tuple[int, str, str]:
        """One HTTP exchange -> (status, response text, Server header).

        Raises:
            ServingError: status 0 when no whole HTTP answer came within
                the timeout (unreachable, not HTTP, cut short, too slow).
        """
        deadline = time.monotonic() + self.timeout
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServingError(
                0, f"--url {self.url!r} is not an http(s)://HOST:PORT URL."
            )
        connection_class = (
            http.client.HTTPSConnection
            if parts.scheme == "https"
            else http.client.HTTPConnection
        )
        data = None if body is None else json.dumps(body).encode("utf-8")
        connection = connection_class(
            parts.hostname, parts.port, timeout=self.timeout
        )
        try:
            connection.request(
                method,
                parts.path.rstrip("/") + path,
                body=data,
                headers={"Content-Type": "application/json"},
            )
            sock = connection.sock
            sock.settimeout(_remaining(deadline))
            response = connection.getresponse()
            chunks, size = [], 0
            while True:
                sock.settimeout(_remaining(deadline))
                chunk = response.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > _MAX_ANSWER_BYTES:
                    raise _bad_answer("it is over 256 MiB")
                chunks.append(chunk)
            if response.length:  # Content-Length said more
                raise http.client.IncompleteRead(b"", response.length)
        except TimeoutError:
            raise ServingError(
                0,
                f"no whole answer from {self.url} within {self.timeout:g} s "
                "(--timeout).",
            ) from None
        except http.client.IncompleteRead:
            raise _bad_answer("the body was cut short") from None
        except http.client.HTTPException as e:
            raise _bad_answer(f"not HTTP ({type(e).__name__})") from None
        except OSError as e:
            raise ServingError(
                0, f"cannot reach {self.url}: {e.strerror or e}."
            ) from None
        finally:
            connection.close()
        return (
            response.status,
            b"".join(chunks).decode("utf-8", "replace"),
            response.headers.get("Server", ""),
        )

    def _call(self, method: str, path: str, body: dict | None = None):
        status, text, _ = self._send(method, path, body)
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if status >= 400:
            message = answer.get("error") if isinstance(answer, dict) else None
            raise ServingError(status, str(message or text[:200]))
        if not isinstance(answer, dict):
            raise _bad_answer(f"HTTP {status} with {text[:60]!r}, not JSON")
        return answer

    def status(self) -> dict:
        """The model's version status (`model_version_status` list).

        Raises:
            ServingError: the server answered with an error.
        """
        return self._call("GET", self._model_path)

    def metadata(self) -> dict:
        """The model's metadata: `{"model_spec", "metadata": {"signature_def":
        {"signature_def": {name: {"inputs", "outputs", ...}}}}}`.

        Raises:
            ServingError: the server answered with an error.
        """
        return self._call("GET", self._model_path + "/metadata")

    def predict(
        self,
        instances: list | None = None,
        *,
        inputs=None,
        signature_name: str | None = None,
    ):
        """Calls `:predict` in the row (`instances`) or columnar (`inputs`)
        format.

        Args:
            instances: one value, or one `{input: value}` object, per example.
            inputs: a whole tensor, or `{input: tensor}`.
            signature_name: the signature; the server's default if None.

        Returns:
            `predictions` (row format) or `outputs` (columnar format).

        Raises:
            ValueError: both or neither of `instances` and `inputs` given.
            ServingError: the server answered with an error.
        """
        if (instances is None) == (inputs is None):
            raise ValueError("pass exactly one of instances= or inputs=.")
        body = (
            {"instances": instances} if inputs is None else {"inputs": inputs}
        )
        if signature_name:
            body["signature_name"] = signature_name
        answer = self._call("POST", self._model_path + ":predict", body)
        key = "predictions" if inputs is None else "outputs"
        if key not in answer:
            raise _bad_answer(f"a 200 without '{key}'")
        return answer[key]

    def speaks_generate(self) -> bool:
        """Whether the server has the `:generate` route (asked once)."""
        if self.use_generate_route is None:
            _, _, server = self._send("GET", self._model_path)
            self.use_generate_route = server.startswith(
                generate_contract.SERVER_SOFTWARE
            )
        return self.use_generate_route

    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int = 32,
        *,
        signature_name: str = GENERATE,
        **settings,
    ) -> list[str]:
        """Continues each prompt through the model's `generate` signature.

        Args:
            prompts: the prompt strings.
            max_new_tokens: the most tokens to add to each prompt.
            signature_name: the generating signature.
            **settings: further inputs of that signature (sampler settings
                such as `temperature` or `seed`, when it has them).

        Returns:
            The completions (the new text only), one per prompt.

        Raises:
            ServingError: the server answered with an error.
        """
        settings = {"max_new_tokens": int(max_new_tokens), **settings}
        if self.speaks_generate():
            body = {
                generate_contract.PROMPTS_KEY: list(prompts),
                generate_contract.SIGNATURE_NAME_KEY: signature_name,
                **settings,
            }
            answer = self._call("POST", self._model_path + ":generate", body)
            return _completions(
                answer.get(generate_contract.COMPLETIONS_KEY), len(prompts)
            )
        signatures = self.metadata()["metadata"]["signature_def"][
            "signature_def"
        ]
        if signature_name not in signatures:
            raise ServingError(
                400,
                f"model '{self.model_name}' has no signature "
                f"'{signature_name}'; available: "
                f"{', '.join(sorted(signatures))}.",
            )
        try:
            prompt, completion = generate_contract.generate_io_names(
                signatures[signature_name], signature_name
            )
        except ValueError as e:
            raise ServingError(400, str(e)) from None
        outputs = self.predict(
            inputs={prompt: list(prompts), **settings},
            signature_name=signature_name,
        )
        if isinstance(outputs, dict):
            outputs = outputs.get(completion)
        return _completions(outputs, len(prompts))


def _completions(values, count: int) -> list[str]:
    """Checks a reply's completions: a list of `count` strings."""
    if not isinstance(values, list):
        raise _bad_answer("it has no list of completions")
    if len(values) != count:
        raise _bad_answer(f"{len(values)} completions for {count} prompt(s)")
    return [_text(value) for value in values]


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left
