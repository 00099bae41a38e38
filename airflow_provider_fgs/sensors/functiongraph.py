"""FunctionGraphAsyncInvocationSensor: wait for an asynchronous invocation to end."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_fgs.client import metrics
from airflow_provider_fgs.compat import conf
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.links.functiongraph import FunctionGraphConsoleLink, FunctionGraphLogLink
from airflow_provider_fgs.operators.async_invocation import (
    cancel_invocation,
    finished_status,
    status_from_event,
)
from airflow_provider_fgs.operators.async_status_persistence import require_async_status_persistence
from airflow_provider_fgs.operators.function_target import FunctionTargetMixin
from airflow_provider_fgs.protocol.async_invoke import (
    DEFAULT_MISSING_RECORD_TIMEOUT_S,
    MissingRecordGuard,
    query_begin_time_for,
)
from airflow_provider_fgs.protocol.result_check import ResultCheckSpec, result_check_of
from airflow_provider_fgs.triggers.async_invocation import FunctionGraphAsyncInvocationTrigger
from airflow_provider_fgs.triggers.end_from_trigger import (
    check_end_from_trigger,
    maps_result,
    worker_decides_end,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class FunctionGraphAsyncInvocationSensor(FunctionTargetMixin, BaseSensorOperator):
    """
    Wait until an asynchronous invocation, started by another task, reaches SUCCESS.

    Fails with :class:`~airflow_provider_fgs.protocol.errors.FunctionError` when the invocation ends
    FAIL or DISCARD. The invocation's status record is pushed as ``return_value``. With ``deferrable``
    the waiting happens in the triggerer (polling with growing intervals from ``poke_interval``).

    Status records exist only when async status persistence is enabled on the function: the first
    check (the first poke, or before deferring) reads the function's async settings and, when they say
    it is off, fails at once with
    :class:`~airflow_provider_fgs.protocol.errors.AsyncStatusPersistenceDisabledError` (settings that
    cannot be read are logged as a warning and the sensor goes on). A query
    finds records only from ``query_begin_time`` on (the platform's default is the last hour). Without
    ``query_begin_time`` the sensor searches from a few minutes before its DAG run started. A request
    id with no record for ``missing_record_timeout`` seconds fails the sensor with
    :class:`~airflow_provider_fgs.protocol.errors.AsyncRecordNotFoundError`.

    :param request_id: the request id of the async invocation, e.g.
        ``"{{ ti.xcom_pull(task_ids='start', key='request_id') }}"``. (templated)
    :param function_urn: full URN of the function. (templated)
    :param function_name: the function's name, resolved with the connection's region and project. (templated)
    :param package: the function's package; ``default`` when not given.
    :param qualifier: ``latest`` (the default) or a version. (templated)
    :param alias: an alias name, instead of ``qualifier``. (templated)
    :param functiongraph_conn_id: the ``functiongraph`` connection to use.
    :param max_poll_interval: the longest interval between two status queries in deferrable mode.
    :param deferrable: wait in the triggerer instead of the worker.
    :param query_begin_time: UTC time the invocation started (ISO 8601), e.g.
        ``"{{ ti.xcom_pull(task_ids='start', key='query_begin_time') }}"``. (templated)
    :param missing_record_timeout: seconds the request id may stay without a status record.
    :param result_check: a check of the ended invocation's status record (a callable, or a pair
        ``(json_path, expected)``), evaluated in the worker; a failed check fails the task naming it.
    :param cancel_on_kill: cancel the invocation when this sensor is killed, marked failed or success,
        or cleared while waiting (also while deferred). Off by default: the invocation was started by
        another task, and a retry of this sensor would find it DISCARD.
    :param end_from_trigger: with ``deferrable``: end the task in the triggerer when the invocation
        ends SUCCESS (its status record pushed from there) instead of resuming it on a worker, out of
        the reach of Airflow's scheduler race of quick triggers (apache/airflow#67287). ``None`` (the
        default) does so unless a ``result_check``, ``multiple_outputs``, a mapped downstream task, a
        custom XCom backend or worker listeners need a worker; ``False`` always resumes on a worker;
        ``True`` refuses ``result_check`` and ``multiple_outputs``.
    """

    template_fields: Sequence[str] = (
        "request_id",
        "function_urn",
        "function_name",
        "qualifier",
        "alias",
        "query_begin_time",
    )
    ui_color = "#e9f3ff"
    operator_extra_links = (FunctionGraphConsoleLink(), FunctionGraphLogLink())

    def __init__(
        self,
        *,
        request_id: str,
        function_urn: str | None = None,
        function_name: str | None = None,
        package: str | None = None,
        qualifier: str | None = None,
        alias: str | None = None,
        functiongraph_conn_id: str = FunctionGraphHook.default_conn_name,
        max_poll_interval: float = 60.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        query_begin_time: str | None = None,
        missing_record_timeout: float = DEFAULT_MISSING_RECORD_TIMEOUT_S,
        result_check: ResultCheckSpec | None = None,
        cancel_on_kill: bool = False,
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
        self.request_id = request_id
        self.functiongraph_conn_id = functiongraph_conn_id
        self.max_poll_interval = max_poll_interval
        self.deferrable = deferrable
        self.query_begin_time = query_begin_time
        self.missing_record_timeout = missing_record_timeout
        self._guard: MissingRecordGuard | None = None
        self.result_check = result_check
        self._result_check = result_check_of(result_check)
        self.cancel_on_kill = cancel_on_kill
        check_end_from_trigger(self, end_from_trigger)
        self.end_from_trigger = end_from_trigger
        self._waiting = False
        self._persistence_checked = False

    def _query_begin_time(self, context: Context) -> str | None:
        """The given ``query_begin_time``, else the DAG run's (or this task's) start, minus a margin."""
        given = query_begin_time_for(self.query_begin_time) if self.query_begin_time else None
        if given:
            return given
        for source in (context.get("dag_run"), context.get("ti")):
            started = getattr(source, "start_date", None)
            if started is not None:
                return query_begin_time_for(started)
        return None

    def _missing_record_guard(self, context: Context, query_begin_time: str | None) -> MissingRecordGuard:
        """One guard per poking instance; in reschedule mode the wait counts from the task's start."""
        if self._guard is None:
            since = None
            started = getattr(context.get("ti"), "start_date", None)
            if self.reschedule and started is not None:
                since = started.timestamp()
            self._guard = MissingRecordGuard(
                request_id=self.request_id,
                function=self.function_label(),
                timeout=self.missing_record_timeout,
                query_begin_time=query_begin_time,
                clock=time.time,
                missing_since=since,
            )
        return self._guard

    def _check_persistence_once(self, context: Context) -> None:
        """Fail when the function keeps no status records; only on the first check of a try."""
        if self._persistence_checked or context.get("task_reschedule_count", 0):
            return  # a rescheduled poke: the try's first poke checked already
        self._persistence_checked = True
        require_async_status_persistence(self.hook, self.resolve_function_urn(), request_id=self.request_id)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self._check_persistence_once(context)
        self.defer(
            trigger=FunctionGraphAsyncInvocationTrigger(
                functiongraph_conn_id=self.functiongraph_conn_id,
                function_urn=str(self.resolve_function_urn()),
                request_id=self.request_id,
                poll_interval=self.poke_interval,
                max_poll_interval=self.max_poll_interval,
                query_begin_time=self._query_begin_time(context),
                missing_record_timeout=self.missing_record_timeout,
                cancel_on_kill=self.cancel_on_kill,
                end_from_trigger=worker_decides_end(self, self.end_from_trigger),
                push_xcoms=self.do_xcom_push,
                maps_result=maps_result(self, context["ti"].map_index),
            ),
            method_name="execute_complete",
            timeout=self.timeout,
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        self._check_persistence_once(context)
        urn = self.resolve_function_urn()
        self._waiting = True
        query_begin_time = self._query_begin_time(context)
        status = self.hook.get_async_invocation(urn, self.request_id, query_begin_time=query_begin_time)
        self._missing_record_guard(context, query_begin_time).check(status)
        if status is None or status.is_pending:
            self.log.info(
                "Async invocation %s is %s", self.request_id, status.status if status else "not recorded yet"
            )
            return False
        self._waiting = False
        metrics.async_invocation_ended(str(urn), status)
        return PokeReturnValue(is_done=True, xcom_value=finished_status(status, str(urn), self._result_check))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: fail on FAIL/DISCARD, else return the status record."""
        return finished_status(status_from_event(event), self.function_label(), self._result_check)

    def on_kill(self) -> None:
        """With ``cancel_on_kill``: cancel the invocation this sensor is waiting for."""
        if self.cancel_on_kill and self._waiting:
            cancel_invocation(self, str(self.resolve_function_urn()), self.request_id)
