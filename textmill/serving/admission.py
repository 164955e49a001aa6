"""Admission control for model calls: a bounded pool, a bounded queue."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
from collections.abc import Callable
from typing import TypeVar

from textmill.serving.serving_error import ServingError

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


class Admission:
    """Runs model calls on at most `max_concurrent` threads.

    A request waits at most `max_queue_seconds` for a free slot (and at
    most `max_queued` requests wait at once), then gets 503 with a
    `Retry-After`. A request whose call outlives its deadline answers 504.
    TensorFlow cannot interrupt a graph call, so a timed-out call keeps its
    slot until it really ends: the count of busy slots is the work the
    machine is really doing, and new requests queue behind it.

    Args:
        max_concurrent: model calls running at once.
        max_queue_seconds: the longest a request waits for a slot.
        max_queued: requests allowed to wait at once.

    Example:

    >>> admission = Admission(max_concurrent=2)
    >>> outputs = await admission.run(lambda: model(x), deadline)
    """

    def __init__(
        self,
        max_concurrent: int,
        max_queue_seconds: float = 5.0,
        max_queued: int | None = None,
    ):
        if max_concurrent < 1 or max_queue_seconds < 0:
            raise ValueError(
                f"max_concurrent ({max_concurrent}) must be >= 1 and "
                f"max_queue_seconds ({max_queue_seconds}) >= 0."
            )
        self.max_concurrent = max_concurrent
        self.max_queue_seconds = max_queue_seconds
        self.max_queued = (
            4 * max_concurrent if max_queued is None else max_queued
        )
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_concurrent, thread_name_prefix="model-call"
        )
        self._lock = threading.Lock()
        self._busy = 0
        self._queued = 0
        self._free: asyncio.Condition | None = None

    @property
    def busy(self) -> int:
        """Model calls running now (timed-out ones included)."""
        return self._busy

    @property
    def queued(self) -> int:
        """Requests waiting for a slot now."""
        return self._queued

    def _retry_after(self) -> ServingError:
        return ServingError(
            503,
            f"the server is busy: {self._busy} model calls running and "
            f"{self._queued} waiting (--max-concurrent "
            f"{self.max_concurrent}); retry after the Retry-After seconds.",
            retry_after=max(1, math.ceil(self.max_queue_seconds)),
        )

    async def _acquire(self, wait_seconds: float) -> None:
        if self._free is None:
            self._free = asyncio.Condition()
        async with self._free:
            if self._busy < self.max_concurrent:
                self._busy += 1
                return
            if self._queued >= self.max_queued or wait_seconds <= 0:
                raise self._retry_after()
            self._queued += 1
            try:
                await asyncio.wait_for(
                    self._free.wait_for(
                        lambda: self._busy < self.max_concurrent
                    ),
                    wait_seconds,
                )
            except asyncio.TimeoutError:
                raise self._retry_after() from None
            finally:
                self._queued -= 1
            self._busy += 1

    async def _release(self) -> None:
        async with self._free:
            self._busy -= 1
            self._free.notify()

    async def run(self, call: Callable[[], _T], deadline: float) -> _T:
        """Runs `call` in the pool once a slot is free.

        Args:
            call: the model call (blocking).
            deadline: the event loop time by which the answer is due.

        Returns:
            What `call` returns.

        Raises:
            ServingError: 503 when no slot frees up in time, 504 when the
                call outlives the deadline.
        """
        loop = asyncio.get_running_loop()
        await self._acquire(min(self.max_queue_seconds, deadline - loop.time()))
        future = loop.run_in_executor(self._pool, call)

        def release(_):
            asyncio.ensure_future(self._release())

        future.add_done_callback(release)
        try:
            return await asyncio.wait_for(
                asyncio.shield(future), max(0.0, deadline - loop.time())
            )
        except asyncio.TimeoutError:
            future.add_done_callback(_log_late_failure)
            raise ServingError(
                504,
                "the model call did not finish before the request's "
                "deadline (--request-timeout); it finishes in the "
                "background and holds its slot until then.",
            ) from None

    def shutdown(self) -> None:
        """Stops the pool without waiting for running calls."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _log_late_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning(
            "A timed-out model call failed: %s", type(future.exception())
        )
