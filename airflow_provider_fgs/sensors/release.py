"""FunctionUpdatedSensor: wait until a function's code update has finished and its configuration matches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.links.functiongraph import FunctionGraphConsoleLink
from airflow_provider_fgs.operators.function_target import FunctionTargetMixin
from airflow_provider_fgs.operators.release import is_template
from airflow_provider_fgs.protocol.errors import InvalidRequestError, error_from_event
from airflow_provider_fgs.protocol.functions import FunctionConfig, pending_reasons
from airflow_provider_fgs.triggers.release import FunctionUpdatedTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

# The fields of FunctionConfig a sensor may wait for.
WATCHABLE_FIELDS = frozenset(
    {"runtime", "handler", "memory_size", "timeout", "environment", "description", "version"}
)


def _expected(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequestError(f"Invalid expected_config {value!r}: expected a mapping of field to value")
    unknown = sorted(set(value) - WATCHABLE_FIELDS)
    if unknown:
        raise InvalidRequestError(
            f"Invalid expected_config field(s) {unknown}: expected some of {sorted(WATCHABLE_FIELDS)}"
        )
    return dict(value)


class FunctionUpdatedSensor(FunctionTargetMixin, BaseSensorOperator):
    """
    Wait until a function (or version) shows the code digest and configuration a release expects.

    Use it after :class:`~airflow_provider_fgs.operators.release.UpdateFunctionCodeOperator`, e.g.
    ``expected_digest="{{ ti.xcom_pull(task_ids='deploy', key='digest') }}"``. Works in ``poke`` and
    ``reschedule`` modes, and with ``deferrable=True`` the reads happen in the triggerer. Each check is
    one configuration read (idempotent, retried by the hook).

    XCom: ``return_value`` is the configuration once it matches.

    :param expected_digest: the code digest to wait for. (templated)
    :param expected_config: fields to wait for, e.g. ``{"handler": "index.handler", "memory_size": 256}``;
        ``environment`` is compared as a whole mapping. (templated)
    :param function_urn: the function's URN (a version URN watches that version). (templated)
    :param function_name: the function's name. (templated)
    :param package: the function's package.
    :param qualifier: a version to watch instead of ``latest``. (templated)
    :param functiongraph_conn_id: the ``functiongraph`` connection to use.
    :param deferrable: wait in the triggerer instead of the worker.
    """

    template_fields: Sequence[str] = (
        "expected_digest",
        "expected_config",
        "function_urn",
        "function_name",
        "qualifier",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"expected_config": "json"}
    ui_color = "#fdf0e2"
    operator_extra_links = (FunctionGraphConsoleLink(),)

    def __init__(
        self,
        *,
        expected_digest: str | None = None,
        expected_config: dict[str, Any] | None = None,
        function_urn: str | None = None,
        function_name: str | None = None,
        package: str | None = None,
        qualifier: str | None = None,
        functiongraph_conn_id: str = FunctionGraphHook.default_conn_name,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.set_function_target(
            function_urn=function_urn,
            function_name=function_name,
            package=package,
            qualifier=qualifier,
            alias=None,
        )
        self.expected_digest = expected_digest
        self.expected_config = expected_config
        self.functiongraph_conn_id = functiongraph_conn_id
        self.deferrable = deferrable
        if not is_template(expected_config):
            _expected(expected_config)
        if expected_digest is None and not expected_config:
            raise InvalidRequestError(
                "Give expected_digest or expected_config: the sensor needs something to wait for"
            )

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=FunctionUpdatedTrigger(
                functiongraph_conn_id=self.functiongraph_conn_id,
                function_urn=str(self.resolve_function_urn()),
                digest=self.expected_digest or None,
                expected=_expected(self.expected_config),
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=self.timeout,
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        config = self.hook.get_function_config(self.resolve_function_urn())
        reasons = pending_reasons(
            config, digest=self.expected_digest or None, expected=_expected(self.expected_config)
        )
        if reasons:
            self.log.info("%s not updated yet: %s", self.function_label(), "; ".join(reasons))
            return False
        return PokeReturnValue(is_done=True, xcom_value=config.to_dict())

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: raise its error, else return the configuration."""
        if event.get("status") != "done":
            raise error_from_event(event.get("error") or {})
        config: dict[str, Any] = event["config"]
        self.log.info("%s updated: %s", self.function_label(), FunctionConfig.from_dict(config).to_dict())
        return config
