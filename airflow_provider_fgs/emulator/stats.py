"""Request and invocation counters, so tests can assert how many calls reached the emulator."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """Thread-safe counters of requests per route and invocations per function."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._invocations: Counter[str] = Counter()
        self._rejections: Counter[str] = Counter()

    def count_request(self, route: str) -> None:
        with self._lock:
            self._requests[route] += 1

    def count_invocation(self, function: str) -> None:
        with self._lock:
            self._invocations[function] += 1

    def count_rejection(self, kind: str) -> None:
        with self._lock:
            self._rejections[kind] += 1

    def rejections(self, kind: str | None = None) -> int:
        """Rejected credentials: ``signature`` (bad AK/SK signature), ``password`` (IAM), ``locked``."""
        with self._lock:
            return self._rejections[kind] if kind is not None else sum(self._rejections.values())

    def snapshot(self) -> dict[str, Any]:
        """Every counter, for the ``/_emulator/stats`` route."""
        with self._lock:
            return {
                "requests": dict(self._requests),
                "invocations": dict(self._invocations),
                "rejections": dict(self._rejections),
            }

    def requests(self, route: str | None = None) -> int:
        with self._lock:
            return self._requests[route] if route is not None else sum(self._requests.values())

    def invocations(self, function: str | None = None) -> int:
        with self._lock:
            return self._invocations[function] if function is not None else sum(self._invocations.values())

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._invocations.clear()
            self._rejections.clear()
