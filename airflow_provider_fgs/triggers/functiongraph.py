"""Triggers that call FunctionGraph from the triggerer: the synchronous invocation here, and (from
:mod:`~airflow_provider_fgs.triggers.async_invocation`) the wait for an asynchronous one.

Triggers serialize only the connection id and the call's parameters: no secret is stored with a
deferred task; the triggerer reads the connection itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from airflow_provider_fgs.client import metrics
from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook
from airflow_provider_fgs.protocol.errors import (
    FunctionGraphError,
    InvocationOutcomeUnknownError,
    error_to_event,
)
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.protocol.invoke import InvocationResult
from airflow_provider_fgs.triggers.async_invocation import FunctionGraphAsyncInvocationTrigger
from airflow_provider_fgs.triggers.claims import (
    FOLLOW_POLL_S,
    Taken,
    claim_is_live,
    is_released,
    new_nonce,
    read_claim,
    release_claim,
    take_claim,
    write_claim,
)
from airflow_provider_fgs.triggers.end_from_trigger import (
    ENDS_HERE,
    deployment_needs_worker_to_end,
    end_here_with_xcoms,
    may_end_in_triggerer,
)
from airflow_provider_fgs.triggers.invocation_report import (
    XCOM_ERROR_TYPE,
    XCOM_REQUEST_ID,
    invocation_xcoms,
    invocation_xcoms_keys,
    log_invocation,
)
from airflow_provider_fgs.triggers.supervisor import (
    TaskTry,
    delete_task_xcom,
    get_task_xcom,
    supervisor_available,
)
from airflow_provider_fgs.triggers.task_start import StartOnWorker, started_task

__all__ = ["FunctionGraphAsyncInvocationTrigger", "FunctionGraphInvokeTrigger"]


class FunctionGraphInvokeTrigger(BaseTrigger):
    """
    Make one synchronous invocation from the triggerer.

    Fires one event: ``{"status": "success", "result": InvocationResult.to_dict()}`` (a failure of
    the user's function is a success here: the operator decides), or ``{"status": "error",
    "error": error_to_event(...)}`` when the call was refused or its input is invalid. With
    ``end_from_trigger``, a function that succeeded ends the task instead (``TaskSuccessEvent``, its
    XComs pushed first).

    Two ways to start: a worker defers with the invocation it rendered and checked (``invocation``); or,
    with ``start_from_trigger``, the scheduler starts the task here without any worker (Airflow 3.3) and
    the trigger reads the invocation from its task instance, renders its templates and checks it, with
    the same typed errors as a worker (:mod:`~airflow_provider_fgs.triggers.task_start`). What only a
    worker can prepare fires ``{"status": "start_on_worker", "reason": ...}``: the task resumes on a
    worker, which defers from there.

    At most once per task try: immediately before sending, the trigger takes a claim in an XCom of its
    task instance (:mod:`~airflow_provider_fgs.triggers.claims`; of runs starting at once, at most one
    gets it), saying until when it may wait for the answer, and records the outcome once the response is
    in. A run of the same trigger that starts again (a new triggerer, a failover, a duplicate) finds the
    claim: it fires the recorded outcome, waits for it while the claim is live, and otherwise fires an
    :class:`~airflow_provider_fgs.protocol.errors.InvocationOutcomeUnknownError` event instead of
    sending again, unless the connection sets ``retry_sync_invoke`` (then it re-sends, and logs so).

    :param functiongraph_conn_id: the Airflow connection id.
    :param invocation: the invocation (:meth:`Invocation.to_dict`, checked, its URN resolved).
    :param task_try: the deferring task's try (:meth:`TaskTry.to_dict`), where the claim is kept when
        the triggerer does not hand the trigger its task instance (``dag.test()``); ``None`` and no
        task instance means no claim (a warning is logged).
    :param end_from_trigger: when the function succeeds, write its log here, push its XComs through
        the triggerer's supervisor, and end the task with a ``TaskSuccessEvent`` instead of resuming it
        on a worker. Only where a triggerer runs the trigger (it hands over the task instance);
        ``dag.test()`` resumes as usual.
    :param push_xcoms: with ``end_from_trigger``: push the result and the invocation's XComs.
    :param maps_result: with ``end_from_trigger``: a mapped task downstream expands over the result.
    :param start_from_trigger: the scheduler started the task here: read the invocation and the other
        settings from the task instance (``invocation`` and the settings above are then not used).
    :param arguments: with ``start_from_trigger``: the operator's arguments as given (templates not yet
        rendered); ``None`` for a mapped task, whose arguments come from its task instance.
    :param legacy: the invocation's fields as triggers deferred by provider 0.x stored them
        (``function_urn``, ``payload``, ``log_type``, ``request_version``, ``instance_memory``,
        ``read_timeout``, ``deserialize_result``).
    """

    def __init__(
        self,
        *,
        functiongraph_conn_id: str = FunctionGraphAsyncHook.default_conn_name,
        invocation: Mapping[str, Any] | None = None,
        task_try: dict[str, Any] | None = None,
        end_from_trigger: bool = False,
        push_xcoms: bool = True,
        maps_result: bool = False,
        start_from_trigger: bool = False,
        arguments: Mapping[str, Any] | None = None,
        **legacy: Any,
    ) -> None:
        super().__init__()
        self.functiongraph_conn_id = functiongraph_conn_id
        if legacy:
            invocation = Invocation.from_dict({**(invocation or {}), **_legacy_invocation(legacy)}).to_dict()
        self.invocation = dict(invocation) if invocation is not None else None
        self.task_try = task_try
        self.end_from_trigger = end_from_trigger
        self.push_xcoms = push_xcoms
        self.maps_result = maps_result
        self.start_from_trigger = start_from_trigger
        self.arguments = dict(arguments) if arguments is not None else None
        self._after_try: int | None = None  # set when this run takes a claim that replaces an earlier try's
        self._holds_unsent_claim = False  # this run took the claim and has not started sending

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.{type(self).__name__}",
            {
                "functiongraph_conn_id": self.functiongraph_conn_id,
                "invocation": self.invocation,
                "task_try": self.task_try,
                "end_from_trigger": self.end_from_trigger,
                "push_xcoms": self.push_xcoms,
                "maps_result": self.maps_result,
                "start_from_trigger": self.start_from_trigger,
                "arguments": self.arguments,
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
        try:
            plan = await self._plan()
        except StartOnWorker as why:
            self.log.info("The task starts on a worker instead: %s", why)
            yield TriggerEvent({"status": "start_on_worker", "reason": str(why)})
            return
        task_try = self._claimed_try()
        if task_try is not None and not supervisor_available():
            task_try = None
        if task_try is None:
            self.log.warning(
                "No task instance or Airflow supervisor is known to this trigger: the invocation of %s "
                "is sent without an at-most-once claim",
                plan.invocation.describe(),
            )
        async with FunctionGraphAsyncHook(plan.functiongraph_conn_id) as hook:
            try:
                urn, call = await hook.aprepare_invoke(plan.invocation)
            except FunctionGraphError as err:  # nothing was sent: no outcome to record
                yield TriggerEvent({"status": "error", "error": error_to_event(err)})
                return
            function = str(urn)
            nonce = new_nonce()
            if task_try is not None:
                # The claim is taken last, once the connection, the request and the token are ready.
                try:
                    instead = await self._take_claim(hook, call, task_try, nonce, function)
                except asyncio.CancelledError:
                    await self._release_if_held(task_try, nonce, function)
                    raise
                if instead is not None:
                    yield await self._fire_recorded(instead)
                    return
            self._holds_unsent_claim = False  # from here on, the request may be on its way
            try:
                result = await self._send_claimed(hook, call, task_try, nonce, function)
            except FunctionGraphError as err:
                event: dict[str, Any] = {"status": "error", "error": error_to_event(err)}
            else:
                event = {"status": "success", "result": result.to_dict()}
        yield await self._finish(plan, event, task_try, nonce, function)

    async def _plan(self) -> _Plan:
        """What to invoke and how to end: from the worker's arguments, or from the task started here."""
        if not self.start_from_trigger:
            if self.invocation is None:
                raise StartOnWorker("the trigger was given no invocation")
            return _Plan(
                functiongraph_conn_id=self.functiongraph_conn_id,
                invocation=Invocation.from_dict(self.invocation),
                end_from_trigger=self.end_from_trigger,
                push_xcoms=self.push_xcoms,
                maps_result=self.maps_result,
            )
        try:
            started = await started_task(self.task_instance, self.arguments)
        except StartOnWorker:
            raise
        except Exception as err:  # whatever the triggerer cannot read here, a worker reads as usual
            self.log.warning("Could not prepare the invocation in the triggerer", exc_info=True)
            raise StartOnWorker(
                f"the triggerer could not read its arguments ({type(err).__name__}: {err})"
            ) from err
        self.log.info(
            "Started here by the scheduler, with no worker: invoking %s", started.invocation.describe()
        )
        needs = started.needs_worker_to_end + deployment_needs_worker_to_end()
        return _Plan(
            functiongraph_conn_id=started.functiongraph_conn_id,
            invocation=started.invocation,
            end_from_trigger=may_end_in_triggerer(started.end_from_trigger, needs, self.log),
            push_xcoms=started.push_xcoms,
            maps_result=started.maps_result,
        )

    async def _finish(
        self, plan: _Plan, event: dict[str, Any], task_try: TaskTry | None, nonce: str, function: str
    ) -> TriggerEvent:
        """
        Record the outcome for a run started again, and fire it: the task's end when this run may end
        it here, else ``event`` itself for the worker to resume with (a refused call, a function error,
        ``dag.test()``).

        Ending here leaves no resume for Airflow's scheduler to fail in the race of quick triggers
        (apache/airflow#67287): the task goes from deferred to success. The XComs are pushed first, as a
        worker pushes them (:mod:`~airflow_provider_fgs.triggers.supervisor`), and the claim then records
        that the task ended; if they cannot be pushed, the task resumes on a worker, which pushes them.
        """
        task_instance = self.task_instance
        ending = plan.end_from_trigger and task_instance is not None and event.get("status") == "success"
        result = (
            InvocationResult.from_dict(event["result"], deserialize=plan.invocation.deserialize)
            if ending
            else None
        )
        if result is not None and not result.is_function_error:
            xcoms = _xcoms_request_id_last(result) if plan.push_xcoms else {}
            ended = await end_here_with_xcoms(
                self,
                task_instance,
                xcoms,
                maps_result=plan.maps_result,
                say_outcome=lambda: log_invocation(
                    self.log,
                    function=result.function or function,
                    result=result,
                    log_type=plan.invocation.log_type,
                    then=f". {ENDS_HERE}",
                ),
            )
            if ended is not None:
                # A pushed request id (pushed last) tells a run started again that the task ended, unless
                # nothing was pushed or an earlier try's XComs may still be there: then it is recorded.
                told_by_xcoms = XCOM_REQUEST_ID in xcoms and self._after_try is None
                if task_try is not None and not told_by_xcoms:
                    await self._record_outcome(task_try, {"status": ENDED}, nonce, function)
                return ended
        if task_try is not None:
            await self._record_outcome(task_try, event, nonce, function)
        return TriggerEvent(event)

    async def _fire_recorded(self, event: dict[str, Any]) -> TriggerEvent:
        """The event another run of this trigger recorded (its task's end, when it ended it)."""
        if event.get("status") == ENDED:
            return TaskSuccessEvent()
        return TriggerEvent(event)

    async def _take_claim(
        self, hook: FunctionGraphAsyncHook, call: Any, task_try: TaskTry, nonce: str, function: str
    ) -> dict[str, Any] | None:
        """Take the claim for this run; ``None`` when it may send, else the event to fire instead."""
        while True:
            until = time.time() + hook.attempt_seconds(call)
            taken = await self._finish_taking(task_try, nonce, function_urn=function, until=until)
            if taken.claim is None:
                if taken.earlier_try is not None:
                    self._after_try = taken.earlier_try
                    await self._clear_earlier_try(task_try, taken.earlier_try)
                return None
            instead = await self._follow(hook, task_try, taken.claim, function, contended=True)
            if instead is _TAKE_AGAIN:
                continue
            if instead is not None:
                return instead
            self._after_try = taken.claim.get("after_try")
            await self._write_sent(hook, call, task_try, nonce, function)
            self._holds_unsent_claim = True
            return None

    async def _finish_taking(self, task_try: TaskTry, nonce: str, **record: Any) -> Taken:
        """
        :func:`take_claim`, finished even when this run is cancelled meanwhile: a run cancelled halfway
        would not know whether it holds the claim, and so could not release it.
        """
        taking = asyncio.ensure_future(take_claim(task_try, nonce, **record))
        try:
            taken = await asyncio.shield(taking)
        except asyncio.CancelledError:
            self._holds_unsent_claim = (await taking).claim is None
            raise
        self._holds_unsent_claim = taken.claim is None
        return taken

    async def _release_if_held(self, task_try: TaskTry, nonce: str, function: str) -> None:
        """On cancellation before sending: release the claim this run holds, for the run taking over."""
        if not self._holds_unsent_claim:
            return
        self._holds_unsent_claim = False
        try:
            await release_claim(task_try, nonce, function_urn=function)
        except Exception:  # the run taking over then fails safe, as for a run that may have sent
            self.log.warning("Could not release the claim of %s", task_try.describe(), exc_info=True)
            return
        self.log.info(
            "Cancelled before sending the invocation of %s for %s: released its claim, so the run of this "
            "trigger that takes over invokes it",
            function,
            task_try.describe(),
        )

    async def _write_sent(
        self, hook: FunctionGraphAsyncHook, call: Any, task_try: TaskTry, nonce: str, function: str
    ) -> None:
        """(Re)write this run's claim just before an attempt: until when it may wait for its answer."""
        after = {} if self._after_try is None else {"after_try": self._after_try}
        until = time.time() + hook.attempt_seconds(call)
        await write_claim(task_try, state="sent", nonce=nonce, function_urn=function, until=until, **after)

    async def _clear_earlier_try(self, task_try: TaskTry, earlier_try: int) -> None:
        """Delete the invocation XComs that an earlier try left (a try started here clears none)."""
        for key in ("return_value", *invocation_xcoms_keys(), XCOM_ERROR_TYPE):
            try:
                await delete_task_xcom(task_try, key)
            except Exception:
                self.log.warning(
                    "Could not delete the XCom %r left by try %s", key, earlier_try, exc_info=True
                )

    async def _send_claimed(
        self, hook: FunctionGraphAsyncHook, call: Any, task_try: TaskTry | None, nonce: str, function: str
    ) -> Any:
        """Send ``call``; a retry first moves this run's claim's ``until`` (a first attempt has it)."""
        if task_try is None:
            return await hook.asend(call)

        async def before_retry(_: BaseException | None) -> None:
            try:
                await self._write_sent(hook, call, task_try, nonce, function)
            except Exception:  # a follower may then fail safe too early: never a second call
                self.log.warning("Could not renew the claim of %s", task_try.describe(), exc_info=True)

        return await hook.asend(call, before_retry=before_retry)

    async def _follow(
        self,
        hook: FunctionGraphAsyncHook,
        task_try: TaskTry,
        claim: dict[str, Any],
        function: str,
        *,
        contended: bool = False,
    ) -> dict[str, Any] | None:
        """
        The event to fire instead of invoking, when another run of this trigger holds the claim.

        Fires the recorded outcome; waits for it while the claim is live; once the claim is stale, ends
        the task if its run pushed the task's XComs, else fails safe (that run is gone and may have
        sent). ``None`` means: send anyway (the claim is stale and the connection opted in to re-sending);
        :data:`_TAKE_AGAIN`: the claim was released (its run never sent), take it.
        """
        waiting_logged = False
        while True:
            if is_released(claim):
                self.log.info(
                    "The run of this trigger that claimed %s for %s was cancelled before sending; "
                    "taking the claim",
                    function,
                    task_try.describe(),
                )
                return _TAKE_AGAIN
            recorded = claim.get("event")
            if isinstance(recorded, dict):
                self.log.info(
                    "Another run of this trigger already invoked %s for %s; firing its recorded outcome "
                    "instead of invoking again",
                    function,
                    task_try.describe(),
                )
                return recorded
            if not claim_is_live(claim):
                if await self._ended_by(task_try, claim):
                    self.log.info(
                        "Another run of this trigger invoked %s for %s and ended the task (its XComs are "
                        "pushed); ending it too instead of invoking again",
                        function,
                        task_try.describe(),
                    )
                    return {"status": ENDED}
                break
            if not waiting_logged:
                self.log.info(
                    "Another run of this trigger is invoking %s for %s%s; waiting for its outcome",
                    function,
                    task_try.describe(),
                    " (both tried to claim it at once)" if contended else "",
                )
                waiting_logged = True
            await asyncio.sleep(FOLLOW_POLL_S)
            claim = await read_claim(task_try) or {}
        settings = await hook.asettings()
        if settings.retry.retry_sync_invoke:
            self.log.warning(
                "An earlier run of this trigger may have invoked %s for %s (claimed at %s) and its "
                "outcome is unknown; sending the invocation again because the connection sets "
                "retry_sync_invoke: the function may run twice",
                function,
                task_try.describe(),
                claim.get("written_at"),
            )
            return None
        error = InvocationOutcomeUnknownError(
            function_urn=function,
            try_number=task_try.try_number,
            request_id=claim.get("request_id"),
        )
        self.log.error("%s", error)
        metrics.invocation_outcome_unknown(function)
        return {"status": "error", "error": error_to_event(error)}

    async def _ended_by(self, task_try: TaskTry, claim: dict[str, Any]) -> bool:
        """Whether the run that holds ``claim`` ended the task: it pushed the request id, last of all."""
        if claim.get("after_try") is not None:  # that XCom may be an earlier try's
            return False
        pushed = await get_task_xcom(task_try, XCOM_REQUEST_ID)
        return isinstance(pushed, str) and bool(pushed)

    async def _record_outcome(
        self, task_try: TaskTry, event: dict[str, Any], nonce: str, function: str
    ) -> None:
        """Record the event about to fire, so that a run started again fires it too instead of guessing."""
        try:
            await write_claim(task_try, state="done", nonce=nonce, function_urn=function, event=event)
        except Exception:  # the event still fires; a run started again would then fail safe instead
            self.log.warning("Could not record the outcome of the invocation of %s", function, exc_info=True)


ENDED = "ended"
"""The outcome recorded when the trigger ended the task itself (its XComs pushed)."""
_TAKE_AGAIN: dict[str, Any] = {}
"""What :meth:`FunctionGraphInvokeTrigger._follow` returns for a released claim (compared by identity)."""


@dataclass(frozen=True)
class _Plan:
    """What a run of the invoke trigger invokes, and how the task may end."""

    functiongraph_conn_id: str
    invocation: Invocation
    end_from_trigger: bool
    push_xcoms: bool
    maps_result: bool


def _xcoms_request_id_last(result: InvocationResult) -> dict[str, Any]:
    """The XComs a worker pushes for ``result``, the request id last (its presence says all are pushed)."""
    xcoms: dict[str, Any] = {} if result.result is None else {"return_value": result.result}
    described = invocation_xcoms(result)
    request_id = described.pop(XCOM_REQUEST_ID)
    xcoms.update(described)
    if request_id is not None:
        xcoms[XCOM_REQUEST_ID] = request_id
    return xcoms


def _legacy_invocation(legacy: Mapping[str, Any]) -> dict[str, Any]:
    """The invocation's fields from the arguments of a trigger deferred by provider 0.x."""
    renamed = {"read_timeout": "timeout", "deserialize_result": "deserialize"}
    return {renamed.get(name, name): value for name, value in legacy.items()}
