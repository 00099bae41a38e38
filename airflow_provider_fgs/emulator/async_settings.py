"""Asynchronous invocation settings of the emulator's functions (what ``async-invoke-config`` serves).

Until a ``PUT .../async-invoke-config`` sets them, a function's settings are the defaults with
``enable_async_status_log`` taken from its ``.json`` (``async_status_persistence``, off by default as on
FunctionGraph). A PUT sets them for the whole function: FunctionGraph keeps them per version, the
emulator one set for every version and alias. Only ``enable_async_status_log`` has an effect (an
async invocation started while it is on gets a status record); the others are stored and answered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from airflow_provider_fgs.emulator.registry import FunctionSpec

DEFAULT_MAX_EVENT_AGE_S = 3600
DEFAULT_MAX_RETRY_ATTEMPTS = 1
"""The defaults of ``UpdateFunctionAsyncInvokeConfigRequestBody`` in the official SDK."""


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class AsyncSettings:
    """One function's asynchronous invocation settings, with the SDK model's field names."""

    enable_async_status_log: bool
    created_time: str
    last_modified: str
    max_async_event_age_in_seconds: int = DEFAULT_MAX_EVENT_AGE_S
    max_async_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS
    destination_config: dict[str, dict[str, str]] = field(default_factory=dict)


class AsyncSettingsStore:
    """
    Thread-safe settings per function name: those set through the API, else the function's own.

    :param clock: epoch seconds (the emulator's clock once its state is built).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._set: dict[str, AsyncSettings] = {}
        self._lock = threading.Lock()
        self.clock = clock
        self._started = _iso(clock())

    def of(self, spec: FunctionSpec) -> AsyncSettings:
        """The settings of ``spec``'s function."""
        with self._lock:
            known = self._set.get(spec.name)
        if known is not None:
            return known
        return AsyncSettings(spec.async_status_persistence, self._started, self._started)

    def status_log_enabled(self, spec: FunctionSpec) -> bool:
        """Whether async invocations of ``spec``'s function get status records."""
        return self.of(spec).enable_async_status_log

    def update(self, spec: FunctionSpec, changes: Mapping[str, Any]) -> AsyncSettings:
        """Apply validated ``changes`` (fields of :class:`AsyncSettings`); fields not given are kept."""
        with self._lock:
            current = self._set.get(spec.name)
            if current is None:
                current = AsyncSettings(spec.async_status_persistence, _iso(self.clock()), "")
            updated = replace(current, **changes, last_modified=_iso(self.clock()))
            self._set[spec.name] = updated
            return updated
