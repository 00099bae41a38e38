"""FunctionGraphAsyncInvocationTrigger: wait in the triggerer for an asynchronous invocation to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fgs.client import metrics
from airflow_provider_fgs.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook
from airflow_provider_fgs.protocol.async_invoke import (
    DEFAULT_MISSING_RECORD_TIMEOUT_S,
    AsyncInvocationStatus,
    MissingRecordGuard,
)
from airflow_provider_fgs.protocol.errors import FunctionGraphError, error_to_event
from airflow_provider_fgs.triggers.end_from_trigger import ENDS_HERE, end_here_with_xcoms
from airflow_provider_fgs.triggers.supervisor import TaskTry, task_state

POLL_BACKOFF = 1.5
"""Factor applied to the interval between two status queries of an async invocation."""


class FunctionGraphAsyncInvocationTrigger(BaseTrigger):
    """
    Poll the status of an asynchronous invocation until it ends.

    The interval starts at ``poll_interval`` and grows by ``backoff`` up to ``max_poll_interval``.
    Fires ``{"status": "done", "invocation": {...}, "function_urn": ...}`` when the invocation
    reached SUCCESS, FAIL or DISCARD, or ``{"status": "error", "error": error_to_event(...)}`` when
    the status query failed,
    the record had an unknown status, or the platform had no record for ``missing_record_timeout``
    seconds (:class:`~airflow_provider_fgs.protocol.errors.AsyncRecordNotFoundError`).

    :param functiongraph_conn_id: the Airflow connection id.
    :param function_urn: the full URN of the function.
    :param request_id: the request id returned when the invocation was started.
    :param poll_interval: seconds before the first status query, and its initial interval.
    :param max_poll_interval: the longest interval between two queries.
    :param backoff: the factor applied to the interval after each query.
    :param query_begin_time: UTC start of the status query window (``YYYY-MM-DDTHH:mm:ss``); the
        platform searches only the last hour without it.
    :param missing_record_timeout: seconds without any record of the request id before failing.
    :param cancel_on_kill: cancel the invocation when a user marks the deferred task failed or success,
        or clears it (never when the triggerer restarts or hands the trigger to another triggerer).
    :param end_from_trigger: when the invocation ends SUCCESS, push its status record as the task's
        ``return_value`` and end the task with a ``TaskSuccessEvent`` instead of resuming it on a worker
        (only where a triggerer runs the trigger; see
        :class:`~airflow_provider_fgs.triggers.functiongraph.FunctionGraphInvokeTrigger`).
    :param push_xcoms: with ``end_from_trigger``: push the status record.
    :param maps_result: with ``end_from_trigger``: a mapped task downstream expands over the record.
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
        query_begin_time: str | None = None,
        missing_record_timeout: float = DEFAULT_MISSING_RECORD_TIMEOUT_S,
        cancel_on_kill: bool = False,
        end_from_trigger: bool = False,
        push_xcoms: bool = True,
        maps_result: bool = False,
    ) -> None:
        super().__init__()
        self.functiongraph_conn_id = functiongraph_conn_id
        self.function_urn = function_urn
        self.request_id = request_id
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.backoff = backoff
        self.query_begin_time = query_begin_time
        self.missing_record_timeout = missing_record_timeout
        self.cancel_on_kill = cancel_on_kill
        self.end_from_trigger = end_from_trigger
        self.push_xcoms = push_xcoms
        self.maps_result = maps_result

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.{type(self).__name__}",
            {
                "functiongraph_conn_id": self.functiongraph_conn_id,
                "function_urn": self.function_urn,
                "request_id": self.request_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "backoff": self.backoff,
                "query_begin_time": self.query_begin_time,
                "missing_record_timeout": self.missing_record_timeout,
                "cancel_on_kill": self.cancel_on_kill,
                "end_from_trigger": self.end_from_trigger,
                "push_xcoms": self.push_xcoms,
                "maps_result": self.maps_result,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async with FunctionGraphAsyncHook(self.functiongraph_conn_id) as hook:
            try:
                async for event in self._poll_until_ended(hook):
                    yield event
            except asyncio.CancelledError:
                # Before Airflow 3.3 there is no on_kill(): tell a user's action from a triggerer shutdown
                # by the task's state (still deferred after a shutdown). The polling hook cancels: its
                # connection is read already, and a cancelled trigger must make no sync supervisor call
                # (3.1's trigger runner died of one: "Response read out of order").
                if self.cancel_on_kill and not AIRFLOW_V_3_3_PLUS and await self._task_left_deferral():
                    await self._cancel_invocation(hook)
                raise

    async def _task_left_deferral(self) -> bool:
        """
        Before 3.3 (no ``on_kill``): whether this cancelled trigger's task has left the deferred state,
        i.e. a user marked it failed or success or cleared it. A triggerer shutting down or handing the
        trigger to another triggerer leaves it deferred; ``False`` too whenever the state cannot be read.
        """
        if self.task_instance is None:
            return False
        try:
            state = await task_state(TaskTry.of(self.task_instance))
        except Exception:
            return False
        return state is not None and state != "deferred"

    async def on_kill(self) -> None:
        """Airflow 3.3+: a user marked the deferred task failed or success, or cleared it."""
        if self.cancel_on_kill:
            await self._cancel_invocation()

    async def _cancel_invocation(self, hook: FunctionGraphAsyncHook | None = None) -> None:
        """Cancel the invocation (with ``hook``, else a hook of its own); a failure is only logged."""
        try:
            if hook is not None:
                await hook.acancel_async_invocation(self.function_urn, self.request_id)
            else:
                async with FunctionGraphAsyncHook(self.functiongraph_conn_id) as own_hook:
                    await own_hook.acancel_async_invocation(self.function_urn, self.request_id)
        except Exception as err:
            self.log.warning(
                "Could not cancel async invocation %s of %s: %s", self.request_id, self.function_urn, err
            )
            return
        self.log.info("Cancelled async invocation %s of %s", self.request_id, self.function_urn)

    async def _poll_until_ended(self, hook: FunctionGraphAsyncHook) -> AsyncIterator[TriggerEvent]:
        interval = self.poll_interval
        guard = MissingRecordGuard(
            request_id=self.request_id,
            function=self.function_urn,
            timeout=self.missing_record_timeout,
            query_begin_time=self.query_begin_time,
        )
        while True:
            try:
                status = await hook.aget_async_invocation(
                    self.function_urn, self.request_id, query_begin_time=self.query_begin_time
                )
                guard.check(status)
            except FunctionGraphError as err:
                yield TriggerEvent({"status": "error", "error": error_to_event(err)})
                return
            if status is not None and not status.is_pending:
                metrics.async_invocation_ended(self.function_urn, status)
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
        yield await self._final_event(status)

    async def _final_event(self, status: AsyncInvocationStatus) -> TriggerEvent:
        """The task's end for a SUCCESS this run may end here, else the event to resume the task with."""
        record = asdict(status)
        event = TriggerEvent({"status": "done", "invocation": record, "function_urn": self.function_urn})
        task_instance = self.task_instance
        if not self.end_from_trigger or task_instance is None or not status.is_success:
            return event
        xcoms = {"return_value": record} if self.push_xcoms else {}
        ended = await end_here_with_xcoms(
            self,
            task_instance,
            xcoms,
            maps_result=self.maps_result,
            say_outcome=lambda: self.log.info(
                "Async invocation %s of %s ended SUCCESS. %s", self.request_id, self.function_urn, ENDS_HERE
            ),
        )
        return event if ended is None else ended
