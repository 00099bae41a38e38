"""FunctionGraphAsyncInvocationSensor: wait for an asynchronous invocation to end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.configuration import conf

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.links.functiongraph import FunctionGraphConsoleLink, FunctionGraphLogLink
from airflow_provider_fgs.operators.async_invocation import (
    cancel_invocation,
    finished_status,
    status_from_event,
)
from airflow_provider_fgs.operators.function_target import FunctionTargetMixin
from airflow_provider_fgs.operators.result_check import ResultCheckSpec, result_check_of
from airflow_provider_fgs.triggers.functiongraph import FunctionGraphAsyncInvocationTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class FunctionGraphAsyncInvocationSensor(FunctionTargetMixin, BaseSensorOperator):
    """
    Wait until an asynchronous invocation, started by another task, reaches SUCCESS.

    Fails with :class:`~airflow_provider_fgs.protocol.errors.FunctionError` when the invocation ends
    FAIL or DISCARD. The invocation's status record is pushed as ``return_value``. With ``deferrable``
    the waiting happens in the triggerer (polling with growing intervals from ``poke_interval``).

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
    :param result_check: a check of the ended invocation's status record (a callable, or a pair
        ``(json_path, expected)``), evaluated in the worker; a failed check fails the task naming it.
    :param cancel_on_kill: cancel the invocation when this sensor is killed, marked failed or success,
        or cleared while waiting (also while deferred). Off by default: the invocation was started by
        another task, and a retry of this sensor would find it DISCARD.
    """

    template_fields: Sequence[str] = ("request_id", "function_urn", "function_name", "qualifier", "alias")
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
        result_check: ResultCheckSpec | None = None,
        cancel_on_kill: bool = False,
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
        self.result_check = result_check
        self._result_check = result_check_of(result_check)
        self.cancel_on_kill = cancel_on_kill
        self._waiting = False

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=FunctionGraphAsyncInvocationTrigger(
                functiongraph_conn_id=self.functiongraph_conn_id,
                function_urn=str(self.resolve_function_urn()),
                request_id=self.request_id,
                poll_interval=self.poke_interval,
                max_poll_interval=self.max_poll_interval,
                cancel_on_kill=self.cancel_on_kill,
            ),
            method_name="execute_complete",
            timeout=self.timeout,
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        urn = self.resolve_function_urn()
        self._waiting = True
        status = self.hook.get_async_invocation(urn, self.request_id)
        if status is None or status.is_pending:
            self.log.info(
                "Async invocation %s is %s", self.request_id, status.status if status else "not recorded yet"
            )
            return False
        self._waiting = False
        return PokeReturnValue(is_done=True, xcom_value=finished_status(status, str(urn), self._result_check))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: fail on FAIL/DISCARD, else return the status record."""
        return finished_status(status_from_event(event), self.function_label(), self._result_check)

    def on_kill(self) -> None:
        """With ``cancel_on_kill``: cancel the invocation this sensor is waiting for."""
        if self.cancel_on_kill and self._waiting:
            cancel_invocation(self, str(self.resolve_function_urn()), self.request_id)
