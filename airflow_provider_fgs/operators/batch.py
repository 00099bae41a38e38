"""InvokeFunctionBatchOperator: one function invoked for many payloads, in one task."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.triggers.base import StartTriggerArgs

from airflow_provider_fgs.client.batch import BatchRun
from airflow_provider_fgs.client.batch_io import (
    BatchReport,
    ListSource,
    PayloadSource,
    ResultSink,
)
from airflow_provider_fgs.compat import conf
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook
from airflow_provider_fgs.operators.start_from_trigger import arm_start_from_trigger
from airflow_provider_fgs.protocol import batch as b
from airflow_provider_fgs.protocol.errors import FunctionGraphError, InvalidRequestError, error_from_event
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.protocol.result_check import ResultCheckSpec, result_check_of
from airflow_provider_fgs.triggers.batch import (
    OPTION_NAMES,
    PAYLOADS_XCOM,
    FunctionGraphBatchTrigger,
    batch_options,
    batch_xcoms,
)
from airflow_provider_fgs.triggers.batch_files import PathSource, ResultsFile
from airflow_provider_fgs.triggers.batch_store import SUMMARY_XCOM, VariableStore, running_summary
from airflow_provider_fgs.triggers.end_from_trigger import (
    deployment_needs_worker_to_end,
    may_end_in_triggerer,
    operator_argument,
    task_needs_worker_to_end,
)
from airflow_provider_fgs.triggers.supervisor import TaskTry

if TYPE_CHECKING:
    from airflow.sdk import Context

_DEFAULT_DEFERRABLE = conf.getboolean("operators", "default_deferrable", fallback=False)
DEFAULT_MAX_CONCURRENCY = 100
_START_TRIGGER_ARGS = StartTriggerArgs(
    trigger_cls=f"{FunctionGraphBatchTrigger.__module__}.{FunctionGraphBatchTrigger.__name__}",
    trigger_kwargs={"start_from_trigger": True},
    next_method="execute_complete",
    next_kwargs=None,
    timeout=None,
)


class BatchFailedError(FunctionGraphError):
    """More items of a batch failed than its failure policy tolerates (the summary and failures say which)."""


class InvokeFunctionBatchOperator(BaseOperator):
    """
    Invoke one FunctionGraph function for every payload of a batch, in one task, at most once per item.

    Up to ``max_concurrency`` synchronous invocations are in flight at once, on one event loop with one
    connection pool and one IAM token: a batch costs milliseconds of Airflow's CPU per invocation, where a
    task per invocation costs about a second. A throttled answer halves the calls in flight and they grow
    back (additive increase, multiplicative decrease); the connection's retries, token cache and
    cool-downs apply to every call. A progress line is logged at least every 10 s.

    **At most once per item.** The batch's ledger (Airflow Variables named after the task instance) says
    which items ended and how; an item is invoked only once the ledger claims it. A restarted or failed
    over triggerer, a worker that died and an Airflow retry resume the batch: items that ended are never
    invoked again, and items that may have been in flight when a run stopped end *outcome unknown*
    (unless ``idempotent``). A retry also invokes the items that did not run (refused calls, items not
    started when the batch stopped) and, with ``idempotent``, every item that did not succeed. See
    docs/delivery-semantics.md for what a crash can lose.

    XComs: ``return_value`` is the results in input order (``None`` where an item did not succeed), or
    with ``results_path`` the summary; ``summary`` counts the items by outcome (success, function_error,
    platform_error, outcome_unknown, not_started) with the wall time, billed duration and GB-s; and
    ``failures`` lists the first ``failures_listed`` failed items (index, request id, error code,
    message) and how many more failed.

    :param invocation: the function and the options of every call, as
        :class:`~airflow_provider_fgs.protocol.invocation.Invocation` (or its fields as a mapping): the
        function (``function_urn``, or ``function_name`` with ``package``, ``qualifier`` or ``alias``),
        ``log_type``, ``request_version``, ``instance_memory``, ``timeout``, ``deserialize``. Its
        ``payload`` must be unset: the payloads are the batch's. (templated)
    :param payloads: the payloads, one invocation each: a list, typically an upstream task's result.
        (templated)
    :param payloads_path: instead of ``payloads``, a JSON Lines file with one payload per line, at any
        location Airflow's ``ObjectStoragePath`` reads (local, S3-compatible stores such as OBS).
        (templated)
    :param results_path: write one JSON line per item there (index, outcome, request id, result or error)
        as answers arrive; ``return_value`` then holds only the summary, so large batches keep their
        results out of XCom. (templated)
    :param max_concurrency: the most invocations in flight.
    :param idempotent: the function may run twice for an item: items that may have run when a run
        stopped, and failed items on a retry, are invoked again.
    :param max_failed_items: the most failed items the task tolerates (default: none).
    :param max_failed_ratio: the largest share of failed items (0 to 1) the task tolerates.
    :param result_check: a check of each successful result, as ``InvokeFunctionOperator``'s: an item whose
        result fails it is a function error. With ``deferrable``, only a ``(json_path, expected)`` pair
        (a callable cannot travel to the triggerer).
    :param failures_listed: how many failed items the ``failures`` XCom lists.
    :param functiongraph_conn_id: the ``functiongraph`` connection to use.
    :param deferrable: run the whole batch as one trigger in the triggerer instead of in the worker.
    :param start_from_trigger: with ``deferrable``, let the scheduler start the task straight in the
        triggerer (Airflow 3.3), which renders its templates and pulls its payloads: no worker process
        runs unless the task resumes on one (as ``InvokeFunctionOperator``'s; a mapped batch starts on a
        worker). On Airflow 3.1 and 3.2 the task starts on a worker and defers from there.
    """

    template_fields: Sequence[str] = ("invocation", "payloads", "payloads_path", "results_path")
    template_fields_renderers: ClassVar[dict[str, str]] = {"invocation": "json", "payloads": "json"}
    ui_color = "#e9f3ff"
    start_trigger_args: StartTriggerArgs | None = _START_TRIGGER_ARGS
    start_from_trigger = False

    def __init__(
        self,
        *,
        invocation: Invocation | Mapping[str, Any],
        payloads: Any = None,
        payloads_path: Any = None,
        results_path: Any = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        idempotent: bool = False,
        max_failed_items: int | None = None,
        max_failed_ratio: float | None = None,
        result_check: ResultCheckSpec | None = None,
        failures_listed: int = 100,
        functiongraph_conn_id: str = FunctionGraphHook.default_conn_name,
        deferrable: bool = _DEFAULT_DEFERRABLE,
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        given = invocation if isinstance(invocation, Invocation) else Invocation.from_dict(invocation)
        if given.payload is not None:
            raise InvalidRequestError(
                f"{type(self).__name__} {self.task_id!r}: the invocation's payload must be unset (the batch "
                "invokes the function once per item of payloads or payloads_path)"
            )
        if (payloads is None) == (payloads_path is None):
            raise InvalidRequestError(
                f"{type(self).__name__} {self.task_id!r}: give either payloads or payloads_path"
            )
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise InvalidRequestError(
                f"Invalid max_concurrency {max_concurrency!r}: expected an integer >= 1"
            )
        self._policy = b.FailurePolicy(max_failed_items, max_failed_ratio)
        check = result_check_of(result_check)
        if (deferrable or start_from_trigger) and check is not None and callable(result_check):
            raise InvalidRequestError(
                f"{type(self).__name__} {self.task_id!r}: with deferrable=True the result_check must be a "
                "(json_path, expected) pair: a callable cannot travel to the triggerer"
            )
        self.invocation = dataclasses.asdict(given)
        self.payloads = payloads
        self.payloads_path = payloads_path
        self.results_path = results_path
        self.max_concurrency = max_concurrency
        self.idempotent = idempotent
        self.max_failed_items = max_failed_items
        self.max_failed_ratio = max_failed_ratio
        self.result_check = result_check
        self.failures_listed = failures_listed
        self.functiongraph_conn_id = functiongraph_conn_id
        self.deferrable = deferrable
        self._start_unavailable = arm_start_from_trigger(
            self,
            start_from_trigger=start_from_trigger,
            deferrable=deferrable,
            start_trigger_args=_START_TRIGGER_ARGS,
            trigger_arguments=self._trigger_arguments,
        )

    def _trigger_arguments(self) -> dict[str, Any]:
        """What the trigger of a task started in the triggerer reads (templates unrendered)."""
        return {
            **{name: getattr(self, name) for name in self.template_fields},
            **self._options(),
            "functiongraph_conn_id": self.functiongraph_conn_id,
            # Callables do not travel to the triggerer: only whether the task has them.
            "post_execute": self._post_execute_hook is not None,
            "on_success_callback": bool(self.on_success_callback),
        }

    def _options(self) -> dict[str, Any]:
        """The batch's options as its trigger takes them (a callable check stays on the worker)."""
        options = {name: getattr(self, name) for name in OPTION_NAMES}
        if callable(self.result_check):
            options["result_check"] = None
        return options

    def _checked_invocation(self) -> Invocation:
        """The rendered invocation, checked, its function named by its resolved URN."""
        invocation = Invocation.from_dict(self.invocation).check()
        urn = FunctionGraphHook(self.functiongraph_conn_id).resolve_urn(**invocation.target())
        return invocation.resolved_to(str(urn))

    def execute(self, context: Context) -> Any:
        """Check the invocation and the input, then run the batch here, or defer it to the triggerer."""
        if self._start_unavailable is not None:
            self.log.info("%s", self._start_unavailable)
        invocation = self._checked_invocation()
        ti = context["ti"]
        if self.payloads is not None and (
            not isinstance(self.payloads, Sequence) or isinstance(self.payloads, str | bytes)
        ):
            raise InvalidRequestError(
                f"Invalid payloads of type {type(self.payloads).__name__}: expected a list of payloads"
            )
        task_try = TaskTry.of(ti)
        ti.xcom_push(key=SUMMARY_XCOM, value=running_summary(task_try.try_number))
        if self.deferrable:
            self._defer(context, invocation)
        report = asyncio.run(self._run_here(invocation, task_try, ti))
        return self._ended(report)

    async def _run_here(self, invocation: Invocation, task_try: TaskTry, ti: Any) -> BatchReport:
        """The batch in this worker: the trigger's engine and ledger, on an event loop of its own."""
        source: PayloadSource = (
            ListSource(list(self.payloads))
            if self.payloads is not None
            else await PathSource.open(self.payloads_path)
        )
        sink: ResultSink | None = ResultsFile(self.results_path) if self.results_path else None
        options = dataclasses.replace(
            batch_options(self._options()), result_check=result_check_of(self.result_check)
        )
        async with FunctionGraphAsyncHook(self.functiongraph_conn_id) as hook:
            batch = BatchRun(
                hook,
                invocation,
                source,
                VariableStore(task_try),
                try_number=task_try.try_number,
                options=options,
                sink=sink,
                logger=self.log,
            )
            report = await batch.run()
        if not report.recorded:
            # return_value too, before the ledger goes (the task returns it as well: Airflow pushes it again).
            xcoms = batch_xcoms(report, self._results_location(), do_xcom_push=self.do_xcom_push)
            for key, value in xcoms.items():
                ti.xcom_push(key=key, value=value)
        if report.status == "success" and not report.recorded:
            await batch.forget()
        return report

    def _results_location(self) -> str | None:
        return None if self.results_path is None else str(self.results_path)

    def _defer(self, context: Context, invocation: Invocation) -> None:
        ti = context["ti"]
        if self.payloads is not None:
            ti.xcom_push(key=PAYLOADS_XCOM, value=list(self.payloads))
        needs = task_needs_worker_to_end(_without_result_check(operator_argument(self)))
        end_here = may_end_in_triggerer(None, needs + deployment_needs_worker_to_end(), self.log)
        self.log.info("Deferring the batch of %s to the triggerer", invocation.function_urn)
        self.defer(
            trigger=FunctionGraphBatchTrigger(
                functiongraph_conn_id=self.functiongraph_conn_id,
                invocation=invocation.to_dict(),
                task_try=TaskTry.of(ti).to_dict(),
                options=self._options(),
                payloads_path=None if self.payloads_path is None else str(self.payloads_path),
                results_path=self._results_location(),
                end_from_trigger=end_here,
                push_xcoms=self.do_xcom_push,
            ),
            method_name="execute_complete",
            timeout=self.execution_timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the batch trigger fired: fail the task if the batch failed, else return its value."""
        status = event.get("status")
        if status == "start_on_worker":  # started in the triggerer, which could not prepare it
            self.log.info(
                "The triggerer could not start this batch (%s); starting it here", event.get("reason")
            )
            return self.execute(context)
        if status == "error" and event.get("error"):
            raise error_from_event(event["error"])
        if status != "success":
            raise BatchFailedError(f"Batch of {self.task_id!r} {status}: {event.get('message')}")
        ti = context["ti"]
        return ti.xcom_pull(task_ids=self.task_id, key="return_value", map_indexes=ti.map_index)

    def _ended(self, report: BatchReport) -> Any:
        if report.status == "error" and report.error is not None:
            raise report.error
        if report.status != "success":
            raise BatchFailedError(f"Batch of {self.task_id!r}: {report.message}")
        return batch_xcoms(report, self._results_location(), do_xcom_push=True)["return_value"]


def _without_result_check(argument: Any) -> Any:
    """An operator's argument reader that leaves ``result_check`` out (the batch applies it per item)."""

    def read(name: str) -> Any:
        return None if name == "result_check" else argument(name)

    return read
