"""What a process has read of each function's settings (its config, its async settings), for a while."""

from __future__ import annotations

import time
from typing import Any, Generic, TypeVar

from airflow_provider_fgs.protocol.async_invoke_config import AsyncInvokeConfig
from airflow_provider_fgs.protocol.functions import FunctionConfig
from airflow_provider_fgs.protocol.urn import FunctionUrn

T = TypeVar("T")

UNREAD: Any = object()
"""Settings not read yet, or no longer trusted (``None`` is a read that failed)."""


class FunctionSettingsCache(Generic[T]):
    """
    One kind of function settings, per endpoint and function, shared by the process's hooks: trusted
    for ``ttl_s`` after they were read; a read that failed is remembered as ``None`` for as long.

    :param ttl_s: how long a read is trusted, in seconds.
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, T | None]] = {}

    def known(self, endpoint: str, urn: FunctionUrn) -> T | Any | None:
        """The settings read for ``urn`` at ``endpoint``, ``None`` for a failed read, or :data:`UNREAD`."""
        entry = self._entries.get(f"{endpoint} {urn}")
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return UNREAD
        return entry[1]

    def remember(self, endpoint: str, urn: FunctionUrn, value: T | None) -> T | None:
        """Keep what was read (``None``: the read failed) and return it."""
        self._entries[f"{endpoint} {urn}"] = (time.monotonic(), value)
        return value

    def clear(self) -> None:
        """Forget every read (tests, for a fresh start)."""
        self._entries.clear()


FUNCTION_SETTINGS_TTL_S = 600.0
"""How long a function's settings (its timeout, its log stream, its async settings) are trusted by the
process that read them."""
FUNCTION_CONFIGS: FunctionSettingsCache[FunctionConfig] = FunctionSettingsCache(FUNCTION_SETTINGS_TTL_S)
"""The function configs this process has read, as invocations use them."""
ASYNC_INVOKE_CONFIGS: FunctionSettingsCache[AsyncInvokeConfig] = FunctionSettingsCache(
    FUNCTION_SETTINGS_TTL_S
)
"""The asynchronous invocation settings this process has read."""
