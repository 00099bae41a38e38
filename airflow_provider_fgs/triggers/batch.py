"""FunctionGraphBatchTrigger: a whole batch of invocations of one function, as one trigger."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from airflow_provider_fgs.client.batch import BatchRun
from airflow_provider_fgs.client.batch_io import (
    BatchOptions,
    BatchReport,
    ListSource,
    PayloadSource,
    ResultSink,
)
from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook
from airflow_provider_fgs.protocol import batch as b
from airflow_provider_fgs.protocol.errors import FunctionGraphError, InvalidRequestError, error_to_event
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.protocol.result_check import ResultCheck
from airflow_provider_fgs.triggers.batch_files import PathSource, ResultsFile
from airflow_provider_fgs.triggers.batch_store import SUMMARY_XCOM, VariableStore
from airflow_provider_fgs.triggers.end_from_trigger import ENDS_HERE
from airflow_provider_fgs.triggers.supervisor import TaskTry, get_task_xcom, set_task_xcom

PAYLOADS_XCOM = "functiongraph_batch_payloads"
"""Where a worker that defers a batch leaves its rendered payloads for the trigger (not cleared on resume)."""
FAILURES_XCOM = "failures"


def batch_options(settings: Mapping[str, Any]) -> BatchOptions:
    """The :class:`BatchOptions` of a trigger's (or an operator's) ``options`` mapping."""
    check = settings.get("result_check")
    return BatchOptions(
        max_concurrency=int(settings.get("max_concurrency") or 100),
        idempotent=bool(settings.get("idempotent")),
        policy=b.FailurePolicy(settings.get("max_failed_items"), settings.get("max_failed_ratio")),
        result_check=ResultCheck((check[0], check[1])) if check is not None else None,
        failures_listed=int(settings.get("failures_listed") or 100),
    )


def batch_xcoms(report: BatchReport, results_path: str | None, *, do_xcom_push: bool) -> dict[str, Any]:
    """
    What a batch pushes: ``return_value`` (the results, or the summary with ``results_path``) and
    ``failures`` unless the task says ``do_xcom_push=False``, and always ``summary``, last: a run of this try
    that starts late reads it to learn that the batch ended.
    """
    xcoms: dict[str, Any] = {}
    if do_xcom_push:
        value = report.results if results_path is None else {**report.summary, "results_path": results_path}
        xcoms.update({"return_value": value, FAILURES_XCOM: report.failures})
    return {**xcoms, SUMMARY_XCOM: report.summary}


async def payload_source(task_try: TaskTry, payloads_path: str | None) -> PayloadSource:
    """The batch's payloads: the file at ``payloads_path``, else the list its worker left in XCom."""
    if payloads_path is not None:
        return await PathSource.open(payloads_path)
    payloads = await get_task_xcom(task_try, PAYLOADS_XCOM)
    if not isinstance(payloads, list):
        raise InvalidRequestError(
            f"The payloads of {task_try.describe()} are not in XCom {PAYLOADS_XCOM!r} (found "
            f"{type(payloads).__name__})"
        )
    return ListSource(payloads)


class FunctionGraphBatchTrigger(BaseTrigger):
    """
    Invoke one function for every payload of a batch from the triggerer, up to ``max_concurrency`` at a
    time on its event loop, at most once per item (:mod:`~airflow_provider_fgs.client.batch`).

    The ledger is kept in Airflow Variables (:mod:`~airflow_provider_fgs.triggers.batch_store`): a run of
    this trigger that starts again (a restarted triggerer, a failover, a duplicate) resumes the batch, or
    waits for the run that holds it. When the batch ends, the trigger pushes its XComs (``return_value``,
    ``summary``, ``failures``); a batch that succeeded ends its task here (``TaskSuccessEvent``) unless a
    worker must end it, else it fires ``{"status": ..., "message": ..., "error": ...}`` for the operator
    to resume with.

    :param functiongraph_conn_id: the Airflow connection id.
    :param invocation: the invocation of every item (:meth:`Invocation.to_dict`, its URN resolved).
    :param task_try: the deferring task's try (:meth:`TaskTry.to_dict`), for when the triggerer does not
        hand the trigger its task instance (``dag.test()``).
    :param options: ``max_concurrency``, ``idempotent``, ``max_failed_items``, ``max_failed_ratio``,
        ``result_check`` (a ``[json_path, expected]`` pair) and ``failures_listed``.
    :param payloads_path: the payloads' JSON Lines file; ``None``: the list in XCom :data:`PAYLOADS_XCOM`.
    :param results_path: where to write the results (JSON Lines); ``None`` keeps them for ``return_value``.
    :param end_from_trigger: end a successful batch's task here.
    :param push_xcoms: push the batch's XComs (the task's ``do_xcom_push``).
    """

    def __init__(
        self,
        *,
        functiongraph_conn_id: str = FunctionGraphAsyncHook.default_conn_name,
        invocation: Mapping[str, Any],
        task_try: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        payloads_path: str | None = None,
        results_path: str | None = None,
        end_from_trigger: bool = True,
        push_xcoms: bool = True,
    ) -> None:
        super().__init__()
        self.functiongraph_conn_id = functiongraph_conn_id
        self.invocation = dict(invocation)
        self.task_try = task_try
        self.options = dict(options or {})
        self.payloads_path = payloads_path
        self.results_path = results_path
        self.end_from_trigger = end_from_trigger
        self.push_xcoms = push_xcoms

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.{type(self).__name__}",
            {
                "functiongraph_conn_id": self.functiongraph_conn_id,
                "invocation": self.invocation,
                "task_try": self.task_try,
                "options": self.options,
                "payloads_path": self.payloads_path,
                "results_path": self.results_path,
                "end_from_trigger": self.end_from_trigger,
                "push_xcoms": self.push_xcoms,
            },
        )

    def _task_try(self) -> TaskTry:
        if self.task_instance is not None:
            return TaskTry.of(self.task_instance)
        if self.task_try:
            return TaskTry(**self.task_try)
        raise RuntimeError("The batch trigger knows neither its task instance nor its task try")

    async def run(self) -> AsyncIterator[TriggerEvent]:
        task_try = self._task_try()
        try:
            source = await payload_source(task_try, self.payloads_path)
            sink: ResultSink | None = ResultsFile(self.results_path) if self.results_path else None
            async with FunctionGraphAsyncHook(self.functiongraph_conn_id) as hook:
                batch = BatchRun(
                    hook,
                    Invocation.from_dict(self.invocation),
                    source,
                    VariableStore(task_try),
                    try_number=task_try.try_number,
                    options=batch_options(self.options),
                    sink=sink,
                    logger=self.log,
                )
                report = await batch.run()
        except FunctionGraphError as err:  # before any item was invoked (input, connection, function)
            yield TriggerEvent({"status": "error", "message": str(err), "error": error_to_event(err)})
            return
        if not report.recorded:
            for key, value in batch_xcoms(report, self.results_path, do_xcom_push=self.push_xcoms).items():
                await set_task_xcom(task_try, key, value)
        if report.status == "success" and not report.recorded:
            await batch.forget()
            if self.end_from_trigger and self.task_instance is not None:
                self.log.info("%s", ENDS_HERE)
                yield TaskSuccessEvent()
                return
        error = error_to_event(report.error) if report.error is not None else None
        yield TriggerEvent({"status": report.status, "message": report.message, "error": error})
