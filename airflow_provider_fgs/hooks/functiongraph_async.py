"""FunctionGraphAsyncHook: a ``functiongraph`` connection read without blocking, for the triggers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from airflow_provider_fgs.client.async_client import (
    AsyncFunctionGraphClient,
    BeforeRetryHook,
    first_use_gate,
)
from airflow_provider_fgs.client.flow import Flow
from airflow_provider_fgs.client.settings import FunctionGraphSettings
from airflow_provider_fgs.compat import to_thread
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.protocol.errors import AuthenticationError

T = TypeVar("T")
CONNECTION_TTL_S = 30.0
"""How long a triggerer process reuses a connection it has read for the next triggers that name it."""
_connections: dict[str, tuple[float, FunctionGraphSettings]] = {}
"""``conn_id`` -> (when read, its settings), shared by the hooks of the process (the triggerer's triggers)."""


class FunctionGraphAsyncHook(FunctionGraphHook, AsyncFunctionGraphClient):
    """
    The asynchronous twin of :class:`~airflow_provider_fgs.hooks.functiongraph.FunctionGraphHook`, used
    by the deferrable triggers: the calls of
    :class:`~airflow_provider_fgs.client.async_client.AsyncFunctionGraphClient` with the connection read
    through Airflow's sync API in a worker thread.

    Use it as an async context manager so its HTTP client is closed, also on cancellation.

    :param functiongraph_conn_id: the Airflow connection id.
    """

    def __init__(self, functiongraph_conn_id: str = FunctionGraphHook.default_conn_name) -> None:
        FunctionGraphHook.__init__(self, functiongraph_conn_id)
        self._http = None

    async def asettings(self) -> FunctionGraphSettings:
        """
        The parsed connection; read in a worker thread the first time (the connection API is sync).

        A triggerer runs many triggers of one connection, and each read is a request to its supervisor:
        the process reuses a connection it read for :data:`CONNECTION_TTL_S`, or until it is refused.
        """
        if "settings" in self.__dict__:  # the cached_property is already filled: no thread hop
            return self.settings
        # Triggers started together wait for the first one's read instead of all reading at once.
        async with first_use_gate(f"connection {self.functiongraph_conn_id}"):
            known = _connections.get(self.functiongraph_conn_id)
            if known is not None and time.monotonic() - known[0] < CONNECTION_TTL_S:
                self.__dict__["settings"] = known[1]
                return known[1]
            settings = await to_thread(lambda: self.settings)
            _connections[self.functiongraph_conn_id] = (time.monotonic(), settings)
            return settings

    async def _arun(
        self, flow_of: Callable[[], Flow[T]], *, before_retry: BeforeRetryHook | None = None
    ) -> T:
        try:
            return await super()._arun(flow_of, before_retry=before_retry)
        except AuthenticationError:
            # Read the connection again next time: its credentials were refused, it may have been fixed.
            _connections.pop(self.functiongraph_conn_id, None)
            raise
