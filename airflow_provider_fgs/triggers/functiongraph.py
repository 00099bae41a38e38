"""Triggers that call FunctionGraph from the triggerer, over ``httpx.AsyncClient``.

Triggers serialize only the connection id and the call's parameters: no secret is stored with a
deferred task; the triggerer reads the connection itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fgs.compat import AIRFLOW_V_3_3_PLUS, deferred_task_left_deferral
from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook
from airflow_provider_fgs.protocol.errors import FunctionGraphError, error_to_event

_MODULE = __name__
POLL_BACKOFF = 1.5
"""Factor applied to the interval between two status queries of an async invocation."""


class FunctionGraphInvokeTrigger(BaseTrigger):
    """
    Make one synchronous invocation from the triggerer.

    Fires one event: ``{"status": "success", "result": InvocationResult.to_dict()}`` (a failure of
    the user's function is a success here: the operator decides), or ``{"status": "error",
    "error": error_to_event(...)}`` when the platform refused the call.

    :param functiongraph_conn_id: the Airflow connection id.
    :param function_urn: the full URN of the function.
    :param payload: the event as a JSON string (already validated by the operator).
    :param log_type: ``"tail"`` or ``None``.
    :param request_version: ``"v1"`` or ``"v0"``.
    :param instance_memory: instance memory in MB, or ``None``.
    :param read_timeout: read timeout in seconds, or ``None`` for the connection's.
    """

    def __init__(
        self,
        *,
        functiongraph_conn_id: str,
        function_urn: str,
        payload: str,
        log_type: str | None = "tail",
        request_version: str = "v1",
        instance_memory: int | None = None,
        read_timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.functiongraph_conn_id = functiongraph_conn_id
        self.function_urn = function_urn
        self.payload = payload
        self.log_type = log_type
        self.request_version = request_version
        self.instance_memory = instance_memory
        self.read_timeout = read_timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{_MODULE}.{type(self).__name__}",
            {
                "functiongraph_conn_id": self.functiongraph_conn_id,
                "function_urn": self.function_urn,
                "payload": self.payload,
                "log_type": self.log_type,
                "request_version": self.request_version,
                "instance_memory": self.instance_memory,
                "read_timeout": self.read_timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async with FunctionGraphAsyncHook(self.functiongraph_conn_id) as hook:
            try:
                result = await hook.ainvoke(
                    self.function_urn,
                    self.payload,
                    log_type=self.log_type,
                    request_version=self.request_version,
                    instance_memory=self.instance_memory,
                    timeout=self.read_timeout,
                    deserialize=False,
                )
            except FunctionGraphError as err:
                yield TriggerEvent({"status": "error", "error": error_to_event(err)})
                return
        yield TriggerEvent({"status": "success", "result": result.to_dict()})


class FunctionGraphAsyncInvocationTrigger(BaseTrigger):
    """
    Poll the status of an asynchronous invocation until it ends.

    The interval starts at ``poll_interval`` and grows by ``backoff`` up to ``max_poll_interval``.
    Fires ``{"status": "done", "invocation": {...}}`` when the invocation reached SUCCESS, FAIL or
    DISCARD, or ``{"status": "error", "error": error_to_event(...)}`` when the status query failed.

    :param functiongraph_conn_id: the Airflow connection id.
    :param function_urn: the full URN of the function.
    :param request_id: the request id returned when the invocation was started.
    :param poll_interval: seconds before the first status query, and its initial interval.
    :param max_poll_interval: the longest interval between two queries.
    :param backoff: the factor applied to the interval after each query.
    :param cancel_on_kill: cancel the invocation when a user marks the deferred task failed or success,
        or clears it (never when the triggerer restarts or hands the trigger to another triggerer).
    """

    def __init__(
        self,
        *,
        functiongraph_conn_id: str,
        function_urn: str,
        request_id: str,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        backoff: float = POLL_BACKOFF,
        cancel_on_kill: bool = False,
    ) -> None:
        super().__init__()
        self.functiongraph_conn_id = functiongraph_conn_id
        self.function_urn = function_urn
        self.request_id = request_id
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.backoff = backoff
        self.cancel_on_kill = cancel_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{_MODULE}.{type(self).__name__}",
            {
                "functiongraph_conn_id": self.functiongraph_conn_id,
                "function_urn": self.function_urn,
                "request_id": self.request_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "backoff": self.backoff,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            async for event in self._poll_until_ended():
                yield event
        except asyncio.CancelledError:
            # Before Airflow 3.3 there is no on_kill(): tell a user's action from a triggerer shutdown
            # by the task's state (still deferred after a shutdown).
            if self.cancel_on_kill and not AIRFLOW_V_3_3_PLUS and await deferred_task_left_deferral(self):
                await self._cancel_invocation()
            raise

    async def on_kill(self) -> None:
        """Airflow 3.3+: a user marked the deferred task failed or success, or cleared it."""
        if self.cancel_on_kill:
            await self._cancel_invocation()

    async def _cancel_invocation(self) -> None:
        """Cancel the invocation; a failure is logged as a warning, never raised."""
        try:
            async with FunctionGraphAsyncHook(self.functiongraph_conn_id) as hook:
                await hook.acancel_async_invocation(self.function_urn, self.request_id)
        except Exception as err:
            self.log.warning(
                "Could not cancel async invocation %s of %s: %s", self.request_id, self.function_urn, err
            )
            return
        self.log.info("Cancelled async invocation %s of %s", self.request_id, self.function_urn)

    async def _poll_until_ended(self) -> AsyncIterator[TriggerEvent]:
        interval = self.poll_interval
        async with FunctionGraphAsyncHook(self.functiongraph_conn_id) as hook:
            while True:
                try:
                    status = await hook.aget_async_invocation(self.function_urn, self.request_id)
                except FunctionGraphError as err:
                    yield TriggerEvent({"status": "error", "error": error_to_event(err)})
                    return
                if status is not None and not status.is_pending:
                    break
                self.log.info(
                    "Async invocation %s of %s is %s; next check in %.1f s",
                    self.request_id,
                    self.function_urn,
                    status.status if status else "not recorded yet",
                    interval,
                )
                await asyncio.sleep(interval)
                interval = min(self.max_poll_interval, interval * self.backoff)
        yield TriggerEvent({"status": "done", "invocation": asdict(status)})
