"""Triggers that call FunctionGraph from the triggerer, over ``httpx.AsyncClient``.

Triggers serialize only the connection id and the call's parameters: no secret is stored with a
deferred task; the triggerer reads the connection itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from airflow_provider_fgs.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook
from airflow_provider_fgs.invocation_report import invocation_xcoms, log_invocation
from airflow_provider_fgs.protocol.async_invoke import (
    DEFAULT_MISSING_RECORD_TIMEOUT_S,
    AsyncInvocationStatus,
    MissingRecordGuard,
)
from airflow_provider_fgs.protocol.errors import (
    FunctionGraphError,
    InvocationOutcomeUnknownError,
    error_to_event,
)
from airflow_provider_fgs.protocol.invoke import InvocationResult
from airflow_provider_fgs.triggers.claims import (
    CLAIM_HEARTBEAT_S,
    claim_is_live,
    new_nonce,
    read_claim,
    take_claim,
    write_claim,
)
from airflow_provider_fgs.triggers.supervisor import TaskTry, set_task_xcom, supervisor_available, task_state

_MODULE = __name__
POLL_BACKOFF = 1.5
"""Factor applied to the interval between two status queries of an async invocation."""


async def _push_task_xcoms(trigger: BaseTrigger, task_instance: Any, xcoms: dict[str, Any]) -> bool:
    """
    Push ``xcoms`` to the trigger's task instance, as a worker would, before the trigger ends the task;
    ``False`` (logged) when they could not all be pushed: the task then resumes on a worker instead.
    """
    task_try = TaskTry.of(task_instance)
    try:
        for key, value in xcoms.items():
            await set_task_xcom(task_try, key, value)
    except Exception:
        trigger.log.warning(
            "Could not push the XComs of %s from the triggerer; the task resumes on a worker",
            task_try.describe(),
            exc_info=True,
        )
        return False
    return True


class FunctionGraphInvokeTrigger(BaseTrigger):
    """
    Make one synchronous invocation from the triggerer.

    Fires one event: ``{"status": "success", "result": InvocationResult.to_dict()}`` (a failure of
    the user's function is a success here: the operator decides), or ``{"status": "error",
    "error": error_to_event(...)}`` when the platform refused the call. With ``end_from_trigger``, a
    function that succeeded ends the task instead (``TaskSuccessEvent``, its XComs pushed first).

    At most once per task try: immediately before sending, the trigger takes a claim in an XCom of its
    task instance (:mod:`~airflow_provider_fgs.triggers.claims`; of runs starting at once, at most one
    gets it), refreshes it while the request is in flight, and records the event it fires once the
    response is in. A run of the same trigger that starts again (a new triggerer, a failover, a
    duplicate) reads that first: it fires the recorded event, waits for it while the claim is refreshed,
    and otherwise fires an :class:`~airflow_provider_fgs.protocol.errors.InvocationOutcomeUnknownError`
    event instead of sending again, unless the connection sets ``retry_sync_invoke`` (then it re-sends,
    and logs so).

    :param functiongraph_conn_id: the Airflow connection id.
    :param function_urn: the full URN of the function.
    :param payload: the event as a JSON string (already validated by the operator).
    :param log_type: ``"tail"`` or ``None``.
    :param request_version: ``"v1"`` or ``"v0"``.
    :param instance_memory: instance memory in MB, or ``None``.
    :param read_timeout: read timeout in seconds, or ``None`` for the connection's.
    :param task_try: the deferring task's try (:meth:`TaskTry.to_dict`), where the claim is kept when
        the triggerer does not hand the trigger its task instance (``dag.test()``); ``None`` and no
        task instance means no claim (a warning is logged).
    :param end_from_trigger: when the function succeeds, write its log here, push its XComs through
        the triggerer's supervisor, and end the task with a ``TaskSuccessEvent`` instead of resuming it
        on a worker. Only where a triggerer runs the trigger (it hands over the task instance);
        ``dag.test()`` resumes as usual.
    :param push_xcoms: with ``end_from_trigger``: push the result and the invocation's XComs.
    :param deserialize_result: with ``end_from_trigger``: JSON-decode the result pushed as
        ``return_value``.
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
        task_try: dict[str, Any] | None = None,
        end_from_trigger: bool = False,
        push_xcoms: bool = True,
        deserialize_result: bool = True,
    ) -> None:
        super().__init__()
        self.functiongraph_conn_id = functiongraph_conn_id
        self.function_urn = function_urn
        self.payload = payload
        self.log_type = log_type
        self.request_version = request_version
        self.instance_memory = instance_memory
        self.read_timeout = read_timeout
        self.task_try = task_try
        self.end_from_trigger = end_from_trigger
        self.push_xcoms = push_xcoms
        self.deserialize_result = deserialize_result

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
                "task_try": self.task_try,
                "end_from_trigger": self.end_from_trigger,
                "push_xcoms": self.push_xcoms,
                "deserialize_result": self.deserialize_result,
            },
        )

    def _claimed_try(self) -> TaskTry | None:
        """The task try the claim belongs to: the triggerer's task instance, else the operator's record."""
        if self.task_instance is not None:
            return TaskTry.of(self.task_instance)
        if self.task_try:
            return TaskTry(**self.task_try)
        return None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        task_try = self._claimed_try()
        if task_try is not None and not supervisor_available():
            task_try = None
        if task_try is None:
            self.log.warning(
                "No task instance or Airflow supervisor is known to this trigger: the invocation of %s "
                "is sent without an at-most-once claim",
                self.function_urn,
            )
        async with FunctionGraphAsyncHook(self.functiongraph_conn_id) as hook:
            nonce = new_nonce()
            resending = False
            if task_try is not None:
                claim = await read_claim(task_try)
                if claim is not None:
                    instead = await self._follow(hook, task_try, claim)
                    if instead is not None:
                        yield await self._final_event(instead)
                        return
                    resending = True  # a stale claim, and the connection opted in to re-sending
            try:
                call = await hook.aprepare_invoke(
                    self.function_urn,
                    self.payload,
                    log_type=self.log_type,
                    request_version=self.request_version,
                    instance_memory=self.instance_memory,
                    timeout=self.read_timeout,
                    deserialize=False,
                )
            except FunctionGraphError as err:  # nothing was sent: no outcome to record
                yield await self._final_event({"status": "error", "error": error_to_event(err)})
                return
            if task_try is not None:
                # The claim is taken last, once the connection, the request and the token are ready.
                instead = await self._take_claim(hook, task_try, nonce, resending=resending)
                if instead is not None:
                    yield await self._final_event(instead)
                    return
            try:
                result = await self._send_claimed(hook, call, task_try, nonce)
            except FunctionGraphError as err:
                event: dict[str, Any] = {"status": "error", "error": error_to_event(err)}
            else:
                event = {"status": "success", "result": result.to_dict()}
        if task_try is not None:
            await self._record_outcome(task_try, event, nonce)
        yield await self._final_event(event)

    async def _final_event(self, event: dict[str, Any]) -> TriggerEvent:
        """
        The event to fire for ``event``: the task's end when this run may end it here, else ``event``
        itself for the worker to resume with (a refused call, a function error, ``dag.test()``).

        Ending here leaves no resume for Airflow's scheduler to fail in the race of quick triggers
        (apache/airflow#67287): the task goes from deferred to success. The XComs are pushed first, as
        a worker pushes them (:mod:`~airflow_provider_fgs.triggers.supervisor`); if that fails, the task
        resumes on a worker, which pushes them again.
        """
        task_instance = self.task_instance
        if not self.end_from_trigger or task_instance is None or event.get("status") != "success":
            return TriggerEvent(event)
        result = InvocationResult.from_dict(event["result"], deserialize=self.deserialize_result)
        if result.is_function_error:
            return TriggerEvent(event)
        if self.push_xcoms:
            xcoms = invocation_xcoms(result)
            if result.result is not None:
                xcoms["return_value"] = result.result
            if not await _push_task_xcoms(self, task_instance, xcoms):
                return TriggerEvent(event)
        log_invocation(
            self.log, function=result.function or self.function_urn, result=result, log_type=self.log_type
        )
        self.log.info("Ending the task here, in the triggerer: it does not resume on a worker")
        return TaskSuccessEvent()

    async def _take_claim(
        self, hook: FunctionGraphAsyncHook, task_try: TaskTry, nonce: str, *, resending: bool
    ) -> dict[str, Any] | None:
        """Take the claim for this run; ``None`` when it may send, else the event to fire instead."""
        if not resending:
            taken = await take_claim(task_try, nonce, function_urn=self.function_urn)
            if taken is None:
                return None
            instead = await self._follow(hook, task_try, taken, contended=True)
            if instead is not None:
                return instead
        await write_claim(task_try, state="sent", nonce=nonce, function_urn=self.function_urn)
        return None

    async def _send_claimed(
        self, hook: FunctionGraphAsyncHook, call: Any, task_try: TaskTry | None, nonce: str
    ) -> Any:
        """Send ``call``, refreshing this run's claim while the request is in flight."""
        if task_try is None:
            return await hook.asend(call)
        done = asyncio.Event()

        async def refresh() -> None:
            while True:
                try:
                    await asyncio.wait_for(done.wait(), CLAIM_HEARTBEAT_S)
                    return
                except TimeoutError:
                    pass
                try:
                    await write_claim(task_try, state="sent", nonce=nonce, function_urn=self.function_urn)
                except Exception:  # a missed refresh may make a follower fail safe: never a second call
                    self.log.warning("Could not refresh the claim of %s", task_try.describe(), exc_info=True)

        refreshing = asyncio.create_task(refresh())
        try:
            return await hook.asend(call)
        finally:
            done.set()  # a refresh in flight completes before the outcome is written over it
            with contextlib.suppress(Exception):
                await refreshing

    async def _follow(
        self,
        hook: FunctionGraphAsyncHook,
        task_try: TaskTry,
        claim: dict[str, Any],
        *,
        contended: bool = False,
    ) -> dict[str, Any] | None:
        """
        The event to fire instead of invoking, when another run of this trigger holds the claim.

        Fires the recorded outcome; waits for it while the claim is refreshed; once the claim is stale
        (its run is gone and may have sent), fails safe. ``None`` means: send anyway (the claim is
        stale and the connection opted in to re-sending).
        """
        waiting_logged = False
        while True:
            recorded = claim.get("event")
            if isinstance(recorded, dict):
                self.log.info(
                    "Another run of this trigger already invoked %s for %s; firing its recorded outcome "
                    "instead of invoking again",
                    self.function_urn,
                    task_try.describe(),
                )
                return recorded
            if not claim_is_live(claim):
                break
            if not waiting_logged:
                self.log.info(
                    "Another run of this trigger is invoking %s for %s%s; waiting for its outcome",
                    self.function_urn,
                    task_try.describe(),
                    " (both tried to claim it at once)" if contended else "",
                )
                waiting_logged = True
            await asyncio.sleep(CLAIM_HEARTBEAT_S)
            claim = await read_claim(task_try) or {}
        settings = await hook.asettings()
        if settings.retry.retry_sync_invoke:
            self.log.warning(
                "An earlier run of this trigger may have invoked %s for %s (claimed at %s) and its "
                "outcome is unknown; sending the invocation again because the connection sets "
                "retry_sync_invoke: the function may run twice",
                self.function_urn,
                task_try.describe(),
                claim.get("written_at"),
            )
            return None
        error = InvocationOutcomeUnknownError(
            function_urn=self.function_urn,
            try_number=task_try.try_number,
            request_id=claim.get("request_id"),
        )
        self.log.error("%s", error)
        return {"status": "error", "error": error_to_event(error)}

    async def _record_outcome(self, task_try: TaskTry, event: dict[str, Any], nonce: str) -> None:
        """Record the event about to fire, so that a run started again fires it too instead of guessing."""
        try:
            await write_claim(
                task_try, state="done", nonce=nonce, function_urn=self.function_urn, event=event
            )
        except Exception:  # the event still fires; a run started again would then fail safe instead
            self.log.warning(
                "Could not record the outcome of the invocation of %s", self.function_urn, exc_info=True
            )


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
        (only where a triggerer runs the trigger; see :class:`FunctionGraphInvokeTrigger`).
    :param push_xcoms: with ``end_from_trigger``: push the status record.
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
                "query_begin_time": self.query_begin_time,
                "missing_record_timeout": self.missing_record_timeout,
                "cancel_on_kill": self.cancel_on_kill,
                "end_from_trigger": self.end_from_trigger,
                "push_xcoms": self.push_xcoms,
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
        if self.push_xcoms and not await _push_task_xcoms(self, task_instance, {"return_value": record}):
            return event
        self.log.info("Async invocation %s of %s ended SUCCESS", self.request_id, self.function_urn)
        self.log.info("Ending the task here, in the triggerer: it does not resume on a worker")
        return TaskSuccessEvent()
