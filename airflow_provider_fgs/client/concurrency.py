"""How many calls a batch keeps in flight: additive increase, multiplicative decrease on throttling."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any, Protocol


class Log(Protocol):
    """A stdlib or structlog logger (a task's, a trigger's)."""

    def info(self, event: Any, *args: Any, **kwargs: Any) -> Any: ...

    def warning(self, event: Any, *args: Any, **kwargs: Any) -> Any: ...

    def exception(self, event: Any, *args: Any, **kwargs: Any) -> Any: ...


MIN_DECREASE_INTERVAL_S = 1.0
"""Throttled answers closer together than this are one signal (a burst of 429s halves the limit once)."""


class AdaptiveLimit:
    """
    The in-flight limit of a batch, used as ``async with limit:`` around each call.

    Starts at ``maximum``. A throttled answer (HTTP 429, ``FSS.0429``, ``APIG.0308``) halves it, at most
    once per :data:`MIN_DECREASE_INTERVAL_S`; every ``limit`` calls that end without being throttled add
    one, up to ``maximum`` again (TCP's congestion avoidance). Calls already in flight finish; no new one
    starts while as many are in flight as the limit allows.

    :param maximum: the most calls in flight (the batch's ``max_concurrency``).
    :param logger: where a change of the limit is logged, with its reason.
    """

    def __init__(self, maximum: int, logger: Log) -> None:
        if maximum < 1:
            raise ValueError(f"the in-flight limit must be at least 1, got {maximum}")
        self.maximum = maximum
        self.current = maximum
        self.active = 0
        self.throttled = 0
        self._logger = logger
        self._calm = 0  # calls ended unthrottled since the limit last moved
        self._last_decrease = float("-inf")
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.active < self.current)
            self.active += 1

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        async with self._changed:
            self.active -= 1
            self._changed.notify()

    def throttled_answer(self, reason: str) -> None:
        """A call was throttled: halve the limit (once per burst)."""
        self.throttled += 1
        self._calm = 0
        now = time.monotonic()
        if now - self._last_decrease < MIN_DECREASE_INTERVAL_S or self.current == 1:
            return
        self._last_decrease = now
        before, self.current = self.current, max(1, self.current // 2)
        self._logger.warning(
            "FunctionGraph throttled a call (%s): backing off from %d to %d calls in flight",
            reason,
            before,
            self.current,
        )

    async def calm_answer(self) -> None:
        """A call ended without being throttled: after ``limit`` of them, allow one more in flight."""
        if self.current >= self.maximum:
            return
        self._calm += 1
        if self._calm < self.current:
            return
        self._calm = 0
        self.current += 1
        if self.current == self.maximum:
            self._logger.info("No throttling any more: back to %d calls in flight", self.current)
        async with self._changed:
            self._changed.notify()
