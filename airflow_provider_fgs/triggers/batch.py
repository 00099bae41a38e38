"""FunctionGraphBatchTrigger: a whole batch of invocations of one function, as one trigger."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
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
from airflow_provider_fgs.triggers.batch_store import SUMMARY_XCOM, VariableStore, running_summary
from airflow_provider_fgs.triggers.end_from_trigger import (
    ENDS_HERE,
    deployment_needs_worker_to_end,
    may_end_in_triggerer,
    task_needs_worker_to_end,
)
from airflow_provider_fgs.triggers.supervisor import TaskTry, get_task_xcom, set_task_xcom
from airflow_provider_fgs.triggers.task_start import StartOnWorker, rendered_arguments

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


OPTION_NAMES = (
    "max_concurrency",
    "idempotent",
    "max_failed_items",
    "max_failed_ratio",
    "result_check",
    "failures_listed",
)
"""The operator's arguments that make a batch's options (the trigger's ``options``)."""


@dataclass(frozen=True)
class _Plan:
    """What a run of the batch trigger runs, and how the task may end."""

    functiongraph_conn_id: str
    invocation: Invocation
    payloads: list[Any] | None
    payloads_path: str | None
    results_path: str | None
    options: Mapping[str, Any]
    end_from_trigger: bool
    push_xcoms: bool


class FunctionGraphBatchTrigger(BaseTrigger):
    """
    Invoke one function for every payload of a batch from the triggerer, up to ``max_concurrency`` at a
    time on its event loop, at most once per item (:mod:`~airflow_provider_fgs.client.batch`).

    The ledger is kept in Airflow Variables (:mod:`~airflow_provider_fgs.triggers.batch_store`): a run of
    this trigger that starts again (a restarted triggerer, a failover, a duplicate) resumes the batch, or
    waits for the run that holds it. When the batch ends, the trigger pushes its XComs (``return_value``,
    ``failures``, ``summary``); a batch that succeeded ends its task here (``TaskSuccessEvent``) unless a
    worker must end it, else it fires ``{"status": ..., "message": ..., "error": ...}`` for the operator
    to resume with.

    Two ways to start, as :class:`~airflow_provider_fgs.triggers.functiongraph.FunctionGraphInvokeTrigger`:
    a worker defers with the batch it rendered and checked, or (``start_from_trigger``, Airflow 3.3) the
    scheduler starts the task here and the trigger renders its arguments itself; what it cannot prepare
    fires ``{"status": "start_on_worker", "reason": ...}``.

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
    :param start_from_trigger: the scheduler started the task here: read everything from the task instance.
    :param arguments: with ``start_from_trigger``: the operator's arguments as given (not yet rendered).
    """

    def __init__(
        self,
        *,
        functiongraph_conn_id: str = FunctionGraphAsyncHook.default_conn_name,
        invocation: Mapping[str, Any] | None = None,
        task_try: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        payloads_path: str | None = None,
        results_path: str | None = None,
        end_from_trigger: bool = True,
        push_xcoms: bool = True,
        start_from_trigger: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.functiongraph_conn_id = functiongraph_conn_id
        self.invocation = dict(invocation) if invocation is not None else None
        self.task_try = task_try
        self.options = dict(options or {})
        self.payloads_path = payloads_path
        self.results_path = results_path
        self.end_from_trigger = end_from_trigger
        self.push_xcoms = push_xcoms
        self.start_from_trigger = start_from_trigger
        self.arguments = dict(arguments) if arguments is not None else None

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
                "start_from_trigger": self.start_from_trigger,
                "arguments": self.arguments,
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
            plan = await self._plan(task_try)
        except StartOnWorker as why:
            self.log.info("The task starts on a worker instead: %s", why)
            yield TriggerEvent({"status": "start_on_worker", "reason": str(why)})
            return
        except FunctionGraphError as err:  # bad input, an unknown connection or function: nothing was sent
            yield TriggerEvent({"status": "error", "message": str(err), "error": error_to_event(err)})
            return
        try:
            source = (
                ListSource(plan.payloads)
                if plan.payloads is not None
                else await payload_source(task_try, plan.payloads_path)
            )
            sink: ResultSink | None = ResultsFile(plan.results_path) if plan.results_path else None
            async with FunctionGraphAsyncHook(plan.functiongraph_conn_id) as hook:
                batch = BatchRun(
                    hook,
                    plan.invocation,
                    source,
                    VariableStore(task_try),
                    try_number=task_try.try_number,
                    options=batch_options(plan.options),
                    sink=sink,
                    logger=self.log,
                )
                report = await batch.run()
        except FunctionGraphError as err:  # before any item was invoked (input, connection, function)
            yield TriggerEvent({"status": "error", "message": str(err), "error": error_to_event(err)})
            return
        ends_here = report.status == "success" and plan.end_from_trigger and self.task_instance is not None
        if ends_here:  # before the pushes, as end_here_with_xcoms says why
            self.log.info("%s", ENDS_HERE)
        if not report.recorded:
            xcoms = batch_xcoms(report, plan.results_path, do_xcom_push=plan.push_xcoms)
            for key, value in xcoms.items():
                await set_task_xcom(task_try, key, value)
        if report.status == "success" and not report.recorded:
            await batch.forget()
        if ends_here:
            yield TaskSuccessEvent()
            return
        error = error_to_event(report.error) if report.error is not None else None
        yield TriggerEvent({"status": report.status, "message": report.message, "error": error})

    async def _plan(self, task_try: TaskTry) -> _Plan:
        """The batch to run: the worker's, or the one of the task the scheduler started here."""
        if not self.start_from_trigger:
            if self.invocation is None:
                raise StartOnWorker("the trigger was given no invocation")
            return _Plan(
                functiongraph_conn_id=self.functiongraph_conn_id,
                invocation=Invocation.from_dict(self.invocation),
                payloads=None,
                payloads_path=self.payloads_path,
                results_path=self.results_path,
                options=self.options,
                end_from_trigger=self.end_from_trigger,
                push_xcoms=self.push_xcoms,
            )
        if self.arguments is None:
            raise StartOnWorker("a mapped batch starts on a worker")
        try:
            task, arguments = await rendered_arguments(self.task_instance, self.arguments)
        except StartOnWorker:
            raise
        except Exception as err:  # whatever the triggerer cannot read here, a worker reads as usual
            self.log.warning("Could not prepare the batch in the triggerer", exc_info=True)
            raise StartOnWorker(
                f"the triggerer could not read its arguments ({type(err).__name__}: {err})"
            ) from err
        await set_task_xcom(task_try, SUMMARY_XCOM, running_summary(task_try.try_number))
        return await self._started_plan(task, arguments)

    async def _started_plan(self, task: Any, arguments: Mapping[str, Any]) -> _Plan:
        """The plan of a task started here: its rendered arguments checked as a worker checks them."""
        conn_id = arguments.get("functiongraph_conn_id") or FunctionGraphAsyncHook.default_conn_name
        invocation = Invocation.from_dict(arguments["invocation"]).check()
        async with FunctionGraphAsyncHook(conn_id) as hook:
            urn = await hook.aresolve_urn(**invocation.target())
        invocation = invocation.resolved_to(str(urn))
        payloads = arguments.get("payloads")
        if payloads is not None and (not isinstance(payloads, Sequence) or isinstance(payloads, str | bytes)):
            raise InvalidRequestError(f"Invalid payloads of type {type(payloads).__name__}: expected a list")

        def argument(name: str) -> Any:
            return None if name == "result_check" else arguments.get(name, getattr(task, name, None))

        needs = task_needs_worker_to_end(argument) + deployment_needs_worker_to_end()
        self.log.info("Started here by the scheduler, with no worker: the batch of %s", urn)
        push = argument("do_xcom_push")
        return _Plan(
            functiongraph_conn_id=conn_id,
            invocation=invocation,
            payloads=None if payloads is None else list(payloads),
            payloads_path=_text(arguments.get("payloads_path")),
            results_path=_text(arguments.get("results_path")),
            options={name: arguments.get(name) for name in OPTION_NAMES},
            end_from_trigger=may_end_in_triggerer(None, needs, self.log),
            push_xcoms=True if push is None else bool(push),
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
