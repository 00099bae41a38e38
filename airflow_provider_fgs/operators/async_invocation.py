"""InvokeFunctionAsyncOperator: start an asynchronous FunctionGraph invocation, optionally wait for it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR

from airflow_provider_fgs.client import metrics
from airflow_provider_fgs.compat import conf
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.links.functiongraph import FunctionGraphConsoleLink, FunctionGraphLogLink
from airflow_provider_fgs.operators.async_status_persistence import require_async_status_persistence
from airflow_provider_fgs.operators.function_target import FunctionTargetMixin
from airflow_provider_fgs.protocol.async_invoke import (
    DEFAULT_MISSING_RECORD_TIMEOUT_S,
    MAX_ASYNC_PAYLOAD_BYTES,
    AsyncInvocationStatus,
    MissingRecordGuard,
    query_begin_time_for,
)
from airflow_provider_fgs.protocol.errors import InvalidRequestError, error_from_event
from airflow_provider_fgs.protocol.invoke import encode_payload
from airflow_provider_fgs.protocol.result_check import ResultCheck, ResultCheckSpec, result_check_of
from airflow_provider_fgs.triggers.async_invocation import POLL_BACKOFF, FunctionGraphAsyncInvocationTrigger
from airflow_provider_fgs.triggers.end_from_trigger import (
    check_end_from_trigger,
    maps_result,
    worker_decides_end,
)
from airflow_provider_fgs.triggers.invocation_report import XCOM_REQUEST_ID

if TYPE_CHECKING:
    from airflow.sdk import Context

XCOM_STATUS = "status"
XCOM_QUERY_BEGIN_TIME = "query_begin_time"


def finished_status(
    status: AsyncInvocationStatus, function: str, result_check: ResultCheck | None = None
) -> dict[str, Any]:
    """
    The status record of an ended invocation as a dict.

    Raises ``FunctionError`` on FAIL/DISCARD, and ``ResultCheckError`` when the record fails ``result_check``.
    """
    if status.is_failed:
        raise status.to_function_error(function)
    record = asdict(status)
    if result_check is not None:
        result_check.verify(record, function=function, request_id=status.request_id)
    return record


def cancel_invocation(
    task: FunctionTargetMixin, function: str, request_id: str, reason: str = "the task was killed"
) -> None:
    """
    Cancel an async invocation ``task`` started; a failure is logged as a warning, never raised.

    Runs in ``on_kill`` (a signal handler, while the task's own call may be in flight): a hook of its
    own, with the task hook's already-read settings, touches neither that call's session nor Airflow's
    connection API. Also runs when a failed deferral resumes the task (``resume_execution``).
    """
    log = task.log  # type: ignore[attr-defined]  # the task logger: module loggers may not reach the task log
    try:
        hook = FunctionGraphHook(task.functiongraph_conn_id)
        hook.__dict__["settings"] = task.hook.settings  # the cached_property, already read by execute()
        with hook:
            hook.cancel_async_invocation(function, request_id)
    except Exception as err:
        log.warning("Could not cancel async invocation %s of %s: %s", request_id, function, err)
        return
    log.info("Cancelled async invocation %s of %s (%s)", request_id, function, reason)


def status_from_event(event: dict[str, Any]) -> AsyncInvocationStatus:
    """The status carried by an event of :class:`FunctionGraphAsyncInvocationTrigger`; re-raises its error."""
    if event.get("status") != "done":
        raise error_from_event(event.get("error") or {})
    return AsyncInvocationStatus(**event["invocation"])


class InvokeFunctionAsyncOperator(FunctionTargetMixin, BaseOperator):
    """
    Start an asynchronous invocation of a FunctionGraph function (``invocations-async``).

    The request id is pushed to XCom (key ``request_id``, and ``return_value`` when not waiting) so a
    :class:`~airflow_provider_fgs.sensors.functiongraph.FunctionGraphAsyncInvocationSensor` in a later
    task can wait for it. With ``wait_for_completion`` the task waits itself, polling the invocation's
    status with growing intervals (in the worker, or in the triggerer when ``deferrable``), and fails
    with :class:`~airflow_provider_fgs.protocol.errors.FunctionError` when it ends FAIL or DISCARD.
    Status records exist only when "async status persistence" is enabled on the function (it is off
    by default on FunctionGraph): before starting an invocation it will wait for, the task reads the
    function's async settings (once per process) and, when they say it is off, fails at once with
    :class:`~airflow_provider_fgs.protocol.errors.AsyncStatusPersistenceDisabledError`, without
    invoking and without Airflow retries; settings that cannot be read are logged as a warning and
    the task goes on. The status query searches from a few minutes before the invocation
    was started (pushed to XCom as ``query_begin_time`` for a sensor), so jobs longer than the
    platform's default one-hour window are found; a request id that stays without any record for
    ``missing_record_timeout`` seconds fails the task with
    :class:`~airflow_provider_fgs.protocol.errors.AsyncRecordNotFoundError` naming the likely causes,
    instead of waiting until the task's timeout.

    Starting an async invocation is not idempotent: like the sync call, it is re-sent only when the
    platform certainly did not accept it.

    :param function_urn: full URN of the function. (templated)
    :param function_name: the function's name, resolved with the connection's region and project. (templated)
    :param package: the function's package; ``default`` when not given.
    :param qualifier: ``latest`` (the default) or a version. (templated)
    :param alias: an alias name, instead of ``qualifier``. (templated)
    :param payload: the event (at most 256 KB once JSON-encoded). (templated)
    :param functiongraph_conn_id: the ``functiongraph`` connection to use.
    :param wait_for_completion: wait until the invocation ends; ``return_value`` is then its status record.
    :param poll_interval: seconds between status queries at first; grows by half each time.
    :param max_poll_interval: the longest interval between two status queries.
    :param deferrable: wait in the triggerer instead of the worker.
    :param missing_record_timeout: seconds a started invocation may stay without a status record.
    :param result_check: with ``wait_for_completion``, a check of the ended invocation's status record
        (a callable, or a pair ``(json_path, expected)`` such as ``("$.status", "SUCCESS")``), evaluated
        in the worker; a failed check fails the task naming the check. A status record never carries
        the function's result.
    :param cancel_on_kill: cancel the invocation this task started when the task is killed, marked
        failed or success, or cleared before it ended (also while deferred: Airflow 3.3 calls the
        trigger's ``on_kill``; a triggerer restart never cancels), and when its ``execution_timeout``
        passes, in the worker or while deferred. A failed cancel is logged as a warning.
    :param end_from_trigger: with ``wait_for_completion`` and ``deferrable``: end the task in the triggerer
        when the invocation ends SUCCESS (its status record pushed from there) instead of resuming it on
        a worker, out of the reach of Airflow's scheduler race of quick triggers (apache/airflow#67287).
        ``None`` (the default) does so unless a ``result_check``, ``multiple_outputs``, a mapped
        downstream task, a custom XCom backend or worker listeners need a worker; ``False`` always
        resumes on a worker; ``True`` refuses ``result_check`` and ``multiple_outputs``.
    """

    template_fields: Sequence[str] = ("function_urn", "function_name", "qualifier", "alias", "payload")
    template_fields_renderers: ClassVar[dict[str, str]] = {"payload": "json"}
    ui_color = "#e9f3ff"
    operator_extra_links = (FunctionGraphConsoleLink(), FunctionGraphLogLink())

    def __init__(
        self,
        *,
        function_urn: str | None = None,
        function_name: str | None = None,
        package: str | None = None,
        qualifier: str | None = None,
        alias: str | None = None,
        payload: Any = None,
        functiongraph_conn_id: str = FunctionGraphHook.default_conn_name,
        wait_for_completion: bool = False,
        poll_interval: float = 10.0,
        max_poll_interval: float = 60.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        missing_record_timeout: float = DEFAULT_MISSING_RECORD_TIMEOUT_S,
        result_check: ResultCheckSpec | None = None,
        cancel_on_kill: bool = True,
        end_from_trigger: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.set_function_target(
            function_urn=function_urn,
            function_name=function_name,
            package=package,
            qualifier=qualifier,
            alias=alias,
        )
        self.payload = payload
        self.functiongraph_conn_id = functiongraph_conn_id
        self.wait_for_completion = wait_for_completion
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.deferrable = deferrable
        self.missing_record_timeout = missing_record_timeout
        if result_check is not None and not wait_for_completion:
            raise InvalidRequestError(
                f"result_check={result_check!r} needs wait_for_completion=True: without waiting there is "
                "no ended invocation to check"
            )
        self.result_check = result_check
        self._result_check = result_check_of(result_check)
        self.cancel_on_kill = cancel_on_kill
        check_end_from_trigger(self, end_from_trigger)
        self.end_from_trigger = end_from_trigger
        self._running: tuple[str, str] | None = None  # (function, request id) while it may run

    def execute(self, context: Context) -> Any:
        encode_payload(self.payload, limit=MAX_ASYNC_PAYLOAD_BYTES)
        urn = self.resolve_function_urn()
        if self.wait_for_completion:
            require_async_status_persistence(self.hook, urn)
        query_begin_time = query_begin_time_for(datetime.now(UTC))
        request_id = self.hook.invoke_async(urn, self.payload)
        self.log.info("Started async invocation %s of %s", request_id, urn)
        self._running = (str(urn), request_id)
        context["ti"].xcom_push(key=XCOM_REQUEST_ID, value=request_id)
        context["ti"].xcom_push(key=XCOM_QUERY_BEGIN_TIME, value=query_begin_time)
        if not self.wait_for_completion:
            self._running = None
            return request_id
        if self.deferrable:
            self.defer(
                trigger=FunctionGraphAsyncInvocationTrigger(
                    functiongraph_conn_id=self.functiongraph_conn_id,
                    function_urn=str(urn),
                    request_id=request_id,
                    poll_interval=self.poll_interval,
                    max_poll_interval=self.max_poll_interval,
                    query_begin_time=query_begin_time,
                    missing_record_timeout=self.missing_record_timeout,
                    cancel_on_kill=self.cancel_on_kill,
                    end_from_trigger=worker_decides_end(self, self.end_from_trigger),
                    push_xcoms=self.do_xcom_push,
                    maps_result=maps_result(self, context["ti"].map_index),
                ),
                method_name="execute_complete",
                timeout=self.execution_timeout,
            )
        status = self._poll(str(urn), request_id, query_begin_time)
        self._running = None
        return finished_status(status, str(urn), self._result_check)

    def on_kill(self) -> None:
        """Cancel the invocation this task started and is waiting for (unless ``cancel_on_kill=False``)."""
        if self.cancel_on_kill and self._running is not None:
            cancel_invocation(self, *self._running)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """
        Resume after the deferred wait; when the deferral itself failed, cancel the invocation first.

        Airflow resumes a task whose deferral failed (``execution_timeout`` reached while deferred, or a
        trigger that crashed) only to raise. Its trigger is stopped without ``on_kill`` then, so nothing
        else would cancel the invocation, and a retry would start a second one beside it.
        """
        if next_method == TRIGGER_FAIL_REPR and self.cancel_on_kill:
            try:
                self._cancel_abandoned_invocation(context)
            except Exception as err:  # never in place of Airflow's own error about the deferral
                self.log.warning("Could not cancel the async invocation of this try: %s", err)
        return super().resume_execution(next_method, next_kwargs, context)

    def _cancel_abandoned_invocation(self, context: Context) -> None:
        ti = context["ti"]
        pushed = {
            key: ti.xcom_pull(task_ids=ti.task_id, key=key, map_indexes=ti.map_index)
            for key in (XCOM_REQUEST_ID, XCOM_QUERY_BEGIN_TIME)
        }
        request_id = pushed[XCOM_REQUEST_ID]
        if not request_id:
            return
        function = str(self.resolve_function_urn())
        try:
            status = self.hook.get_async_invocation(
                function, request_id, query_begin_time=pushed[XCOM_QUERY_BEGIN_TIME]
            )
        except Exception as err:  # still try to cancel: the status query is only for a clear log
            self.log.warning("Could not read the status of async invocation %s: %s", request_id, err)
            status = None
        if status is not None and not status.is_pending:
            self.log.info("Async invocation %s of %s already ended %s", request_id, function, status.status)
            return
        cancel_invocation(self, function, request_id, reason="the deferred wait failed")

    def _poll(self, function: str, request_id: str, query_begin_time: str | None) -> AsyncInvocationStatus:
        interval = self.poll_interval
        guard = MissingRecordGuard(
            request_id=request_id,
            function=function,
            timeout=self.missing_record_timeout,
            query_begin_time=query_begin_time,
        )
        while True:
            status = self.hook.get_async_invocation(function, request_id, query_begin_time=query_begin_time)
            guard.check(status)
            if status is not None and not status.is_pending:
                self.log.info("Async invocation %s of %s ended %s", request_id, function, status.status)
                metrics.async_invocation_ended(function, status)
                return status
            self.log.info(
                "Async invocation %s is %s; next check in %.1f s",
                request_id,
                status.status if status else "not recorded yet",
                interval,
            )
            time.sleep(interval)
            interval = min(self.max_poll_interval, interval * POLL_BACKOFF)

    def execute_complete(
        self, context: Context, event: dict[str, Any], function: str | None = None
    ) -> dict[str, Any]:
        """
        Resume after the trigger fired: fail on FAIL/DISCARD, else return the status record.

        The function comes from the event (``dag.test()`` drops ``defer(kwargs=...)``); ``function``
        is still accepted from tasks deferred by an earlier version of the provider.
        """
        status = status_from_event(event)
        function = event.get("function_urn") or function or str(self.resolve_function_urn())
        self.log.info("Async invocation %s of %s ended %s", status.request_id, function, status.status)
        return finished_status(status, function, self._result_check)
