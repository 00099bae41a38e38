"""InvokeFunctionOperator: call a FunctionGraph function synchronously from a task."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.triggers.base import StartTriggerArgs

from airflow_provider_fgs.compat import conf
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.links.functiongraph import FunctionGraphConsoleLink, FunctionGraphLogLink
from airflow_provider_fgs.operators.function_target import FunctionTargetMixin
from airflow_provider_fgs.operators.start_from_trigger import arm_start_from_trigger, check_start_from_trigger
from airflow_provider_fgs.protocol.errors import FunctionGraphError, error_from_event
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.protocol.invoke import SYNC_GATEWAY_TIMEOUT_S, InvocationResult, validate_options
from airflow_provider_fgs.protocol.result_check import ResultCheckSpec, result_check_of
from airflow_provider_fgs.triggers.claims import CLAIM_XCOM_KEY, TaskTry, open_claim
from airflow_provider_fgs.triggers.end_from_trigger import (
    check_end_from_trigger,
    maps_result,
    worker_decides_end,
)
from airflow_provider_fgs.triggers.functiongraph import FunctionGraphInvokeTrigger
from airflow_provider_fgs.triggers.invocation_report import XCOM_ERROR_TYPE, invocation_xcoms, log_invocation

if TYPE_CHECKING:
    from airflow.sdk.definitions.mappedoperator import OperatorPartial

if TYPE_CHECKING:
    from airflow.sdk import Context

_DEFAULT_DEFERRABLE = conf.getboolean("operators", "default_deferrable", fallback=False)
_START_TRIGGER_ARGS = StartTriggerArgs(
    trigger_cls=f"{FunctionGraphInvokeTrigger.__module__}.{FunctionGraphInvokeTrigger.__name__}",
    trigger_kwargs={"start_from_trigger": True},
    next_method="execute_complete",
    next_kwargs=None,
    timeout=None,
)


class InvokeFunctionOperator(FunctionTargetMixin, BaseOperator):
    """
    Invoke a Huawei Cloud FunctionGraph function synchronously and return its result.

    Name the function either by its full URN, or by its name (plus optional package and qualifier or
    alias), in which case the region and project come from the connection. The function's log tail is
    written into the task log, line by line, before anything is raised, so a failed invocation shows
    its log; the request id, duration, billed duration and memory are logged with it.

    The task fails with :class:`~airflow_provider_fgs.protocol.errors.FunctionError` when the function
    itself fails, and with the hook's typed exceptions when the platform refuses the call. Bad input
    (both or neither of URN and name, a payload that is not JSON or is over 6 MB, an unknown memory
    size) fails with :class:`~airflow_provider_fgs.protocol.errors.InvalidRequestError` before any call.

    XCom: ``return_value`` is the function's result (JSON-decoded unless ``deserialize_result`` is
    false); the keys ``request_id``, ``log``, ``summary`` and ``billing_duration_ms`` describe the
    invocation and are pushed even when the function fails. Nothing is pushed with ``do_xcom_push=False``.

    :param function_urn: full URN ``urn:fss:<region>:<project>:function:<package>:<name>[:<qualifier>]``.
        (templated)
    :param function_name: the function's name, resolved with the connection's region and project.
        (templated)
    :param package: the function's package (application); ``default`` when not given.
    :param qualifier: ``latest`` (the default), or a version. (templated)
    :param alias: an alias name, instead of ``qualifier``. (templated)
    :param payload: the event: a dict or list (JSON-encoded), or a str/bytes that already holds JSON.
        ``None`` sends ``{}``. (templated)
    :param log_type: ``"tail"`` to receive and log the last 2000 bytes of the function's log, ``"none"``
        for no log.
    :param request_version: ``"v1"`` (JSON envelope) or ``"v0"`` (raw return value).
    :param instance_memory: instance memory in MB for this call (128, 256, ... 10240). FunctionGraph
        applies it only when Dynamic Memory is enabled on the function; otherwise the function's
        configured memory is used, silently. An invalid size fails before the call (the platform
        would answer 406 ``FSS.0406``). (templated)
    :param functiongraph_conn_id: the ``functiongraph`` connection to use.
    :param deserialize_result: JSON-decode the result when it is JSON; when false the result is the
        raw string.
    :param invoke_timeout: read timeout in seconds for this call, instead of the connection's. The
        API gateway gives no synchronous answer after 90 s (504 ``APIG.0201``, while the function
        may run on), so a larger value only warns: use
        :class:`~airflow_provider_fgs.operators.async_invocation.InvokeFunctionAsyncOperator` for
        functions that may run longer than 90 s.
    :param deferrable: wait for the invocation in the triggerer instead of the worker.
    :param start_from_trigger: with ``deferrable``, let the scheduler start the task straight in the
        triggerer (Airflow 3.3): no worker process runs unless the task resumes on one, and the templated
        fields are rendered in the triggerer (see docs/delivery-semantics.md for what it cannot be
        combined with). On Airflow 3.1 and 3.2 the task starts on a worker and defers from there, as
        its log says.
    :param result_check: fail the task when the function answers but its result says the work failed:
        a callable taking the decoded result and returning a true value when it is good, or a pair
        ``(json_path, expected)`` such as ``("$.status", "ok")``. Evaluated in the worker (after a
        deferral too), after the XComs are pushed; a failed check raises
        :class:`~airflow_provider_fgs.protocol.result_check.ResultCheckError` naming the check.
    :param end_from_trigger: on the deferrable path, end the task in the triggerer when the function
        succeeds (its log written to the task log and its XComs pushed from there) instead of resuming
        it on a worker: no worker slot for the resume, and Airflow's scheduler cannot fail the task in
        the race of quick triggers (apache/airflow#67287, see docs/delivery-semantics.md). ``None``
        (the default) does so unless something needs a worker when the task ends: a ``result_check``,
        ``multiple_outputs``, ``outlets`` (asset events), a ``map_index_template``, a ``post_execute``
        hook, a custom XCom backend, or listeners. ``True`` fails at construction when one of the task's
        own settings needs a worker (and Airflow refuses it when listeners are registered); ``False``
        always resumes on a worker. A function error and a refused call always resume on a worker,
        which raises the typed error.
    """

    template_fields: Sequence[str] = (
        "function_urn",
        "function_name",
        "qualifier",
        "alias",
        "payload",
        "instance_memory",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"payload": "json"}
    ui_color = "#e9f3ff"
    operator_extra_links = (FunctionGraphConsoleLink(), FunctionGraphLogLink())
    # What the scheduler defers a task with when it starts it in the triggerer (Airflow 3.3). A mapped
    # task gets these (the trigger reads its arguments from the task); a task of its own, its arguments.
    start_trigger_args: StartTriggerArgs | None = _START_TRIGGER_ARGS
    start_from_trigger = False

    def __init__(
        self,
        *,
        function_urn: str | None = None,
        function_name: str | None = None,
        package: str | None = None,
        qualifier: str | None = None,
        alias: str | None = None,
        payload: Any = None,
        log_type: str | None = "tail",
        request_version: str = "v1",
        instance_memory: int | str | None = None,
        functiongraph_conn_id: str = FunctionGraphHook.default_conn_name,
        deserialize_result: bool = True,
        invoke_timeout: float | None = None,
        deferrable: bool = _DEFAULT_DEFERRABLE,
        start_from_trigger: bool = False,
        result_check: ResultCheckSpec | None = None,
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
        validate_options(log_type, request_version, None)
        self.payload = payload
        self.log_type = log_type
        self.request_version = request_version
        self.instance_memory = instance_memory
        self.functiongraph_conn_id = functiongraph_conn_id
        self.deserialize_result = deserialize_result
        self.invoke_timeout = invoke_timeout
        self.deferrable = deferrable
        if isinstance(invoke_timeout, int | float) and invoke_timeout > SYNC_GATEWAY_TIMEOUT_S:
            warnings.warn(
                f"{type(self).__name__} {self.task_id!r}: invoke_timeout={invoke_timeout:g} s is over "
                f"FunctionGraph's {SYNC_GATEWAY_TIMEOUT_S:g} s limit on synchronous answers; the API "
                "gateway answers 504 APIG.0201 after it while the function may still run. Use "
                "InvokeFunctionAsyncOperator for functions that run longer.",
                UserWarning,
                stacklevel=2,
            )
        self.result_check = result_check
        self._result_check = result_check_of(result_check)
        check_end_from_trigger(self, end_from_trigger)
        self.end_from_trigger = end_from_trigger
        self.request_id: str | None = None  # of the invocation this task made, once it is known here
        self._start_unavailable = arm_start_from_trigger(
            self,
            start_from_trigger=start_from_trigger,
            deferrable=deferrable,
            start_trigger_args=_START_TRIGGER_ARGS,
            trigger_arguments=self._trigger_arguments,
        )

    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        """As ``BaseOperator.partial``; a ``start_from_trigger`` that cannot be kept fails when parsed."""
        operator_partial: OperatorPartial = super().partial(**kwargs)
        arguments = operator_partial.kwargs
        if arguments.get("start_from_trigger"):
            check_start_from_trigger(
                cls.__name__,
                str(arguments.get("task_id")),
                deferrable=arguments.get("deferrable", _DEFAULT_DEFERRABLE),
                arguments=arguments,
            )
        return operator_partial

    def _trigger_arguments(self) -> dict[str, Any]:
        """The arguments the trigger of a task started in the triggerer needs (templates unrendered)."""
        arguments = {name: getattr(self, name) for name in Invocation.operator_argument_names()}
        arguments.update(
            functiongraph_conn_id=self.functiongraph_conn_id,
            end_from_trigger=self.end_from_trigger,
            # Callables do not travel to the triggerer: only whether the task has them.
            result_check=self.result_check is not None,
            post_execute=self._post_execute_hook is not None,
            on_success_callback=bool(self.on_success_callback),
        )
        return arguments

    def invocation(self) -> Invocation:
        """The invocation this task makes, from its (rendered) arguments."""
        return Invocation.from_operator_arguments(
            {name: getattr(self, name) for name in Invocation.operator_argument_names()}
        )

    def execute(self, context: Context) -> Any:
        """Check everything, then invoke the function (here, or from the triggerer when deferrable)."""
        if self._start_unavailable is not None:
            self.log.info("%s", self._start_unavailable)
        with self._failure_recorded(context):
            return self._invoke(context)

    @contextmanager
    def _failure_recorded(self, context: Context) -> Iterator[None]:
        """
        Push the class of the provider's error that fails the task (XCom ``error_type``): whether the
        function failed, the call was refused, or its outcome is unknown (the FunctionGraph view's charts
        count invocations by it).
        """
        try:
            yield
        except FunctionGraphError as err:
            if self.do_xcom_push:
                context["ti"].xcom_push(key=XCOM_ERROR_TYPE, value=type(err).__name__)
            raise

    def _invoke(self, context: Context) -> Any:
        # Fail on bad input before any network call (templates are rendered by now).
        urn = self.resolve_function_urn()
        invocation = self.invocation().check().resolved_to(str(urn))
        if self.deferrable:
            self._defer_invocation(context, invocation)
        self.log.info("Invoking FunctionGraph function %s", urn)
        return self.process_result(context, self.hook.invoke(invocation))

    def _defer_invocation(self, context: Context, invocation: Invocation) -> None:
        ti = context["ti"]
        self.log.info("Deferring the invocation of %s to the triggerer", invocation.function_urn)
        self._open_claim(ti)
        self.defer(
            trigger=FunctionGraphInvokeTrigger(
                functiongraph_conn_id=self.functiongraph_conn_id,
                invocation=invocation.to_dict(),
                task_try=TaskTry.of(ti).to_dict(),
                end_from_trigger=worker_decides_end(self, self.end_from_trigger),
                push_xcoms=self.do_xcom_push,
                maps_result=maps_result(self, ti.map_index),
            ),
            method_name="execute_complete",
            timeout=self.execution_timeout,
        )

    def _open_claim(self, ti: Any) -> None:
        """
        Write this try's open claim: the trigger's first read of it then finds a record (Airflow logs a
        missing XCom as an error); see :mod:`~airflow_provider_fgs.triggers.claims`.
        """
        ti.xcom_push(key=CLAIM_XCOM_KEY, value=open_claim(ti.try_number))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the invoke trigger fired: the same handling as the synchronous path."""
        with self._failure_recorded(context):
            return self._complete(context, event)

    def _complete(self, context: Context, event: dict[str, Any]) -> Any:
        status = event.get("status")
        if status == "start_on_worker":  # started in the triggerer, which could not prepare it
            self.log.info(
                "The triggerer could not start this invocation (%s); deferring from here", event.get("reason")
            )
            return self._invoke(context)
        if status != "success":
            raise error_from_event(event.get("error") or {})
        result = InvocationResult.from_dict(event["result"], deserialize=self.deserialize_result)
        return self.process_result(context, result)

    def process_result(self, context: Context, result: InvocationResult) -> Any:
        """
        Handle a finished invocation: log it, push its XComs, fail on a function error, return its result.

        Shared by the synchronous and the deferrable paths.
        """
        # The result names the URN it was sent to, on the worker and after deferral alike.
        function = result.function or self.function_label()
        self.request_id = result.request_id
        self._log_invocation(function, result)
        if self.do_xcom_push:
            ti = context["ti"]
            for key, value in invocation_xcoms(result).items():
                ti.xcom_push(key=key, value=value)
        result.raise_for_function_error(function)
        if self._result_check is not None:
            self._result_check.verify(result.result, function=function, request_id=result.request_id)
            self.log.info("Result check %s passed", self._result_check.name)
        return result.result

    def _log_invocation(self, function: str, result: InvocationResult) -> None:
        log_invocation(self.log, function=function, result=result, log_type=self.log_type)
