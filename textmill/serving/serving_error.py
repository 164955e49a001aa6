"""The error the model server answers with, and the client raises."""

from __future__ import annotations


class ServingError(Exception):
    """A failed REST request: an HTTP status and a message.

    The server sends it as `{"error": message}` with `status`; the client
    raises it when a server answers with an error.

    Args:
        status: HTTP status code, or 0 when there was no valid HTTP
            answer (the client's timeouts and malformed replies); (400 bad
            request, 404 unknown model or
            version, 413 body too large, 500 model failure, 501 route not
            implemented, 503 busy, 504 past the deadline).
        message: what went wrong, naming the value received and the fix.
        retry_after: for 503, the seconds after which to retry (sent as
            the `Retry-After` header).

    Example:

    >>> raise ServingError(404, "model 'lm' not found")
    """

    def __init__(
        self, status: int, message: str, retry_after: int | None = None
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        if not self.status:  # no HTTP answer at all (client side)
            return self.message
        return f"HTTP {self.status}: {self.message}"
