"""The function an operator or sensor calls, named by URN or by name, and resolved through the hook."""

from __future__ import annotations

from functools import cached_property

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.protocol.urn import FunctionUrn, check_function_arguments

__all__ = ["FunctionTargetMixin", "check_function_arguments"]


class FunctionTargetMixin:
    """
    ``function_urn``, or ``function_name`` with optional ``package`` and ``qualifier`` or ``alias``,
    completed with the region and project of the ``functiongraph_conn_id`` connection.

    Call :meth:`set_function_target` from ``__init__``: conflicting arguments fail when the DAG is parsed.
    """

    functiongraph_conn_id: str
    function_urn: str | None
    function_name: str | None
    package: str | None
    qualifier: str | None
    alias: str | None
    _resolved_urn: FunctionUrn | None

    @classmethod
    def get_serialized_fields(cls) -> frozenset[str]:
        """Airflow's serialized fields plus the connection (the FunctionGraph view reads it there)."""
        # Only templated fields and BaseOperator's own are serialized otherwise: without this, the DAGs'
        # serialized form could not say which connection (account, region) a task's function is in.
        fields: frozenset[str] = super().get_serialized_fields()  # type: ignore[misc]
        return fields | {"functiongraph_conn_id"}

    def set_function_target(
        self,
        *,
        function_urn: str | None,
        function_name: str | None,
        package: str | None,
        qualifier: str | None,
        alias: str | None,
    ) -> None:
        """Check and keep the arguments naming the function."""
        check_function_arguments(function_urn, function_name, package, qualifier, alias)
        self.function_urn = function_urn
        self.function_name = function_name
        self.package = package
        self.qualifier = qualifier
        self.alias = alias
        self._resolved_urn = None

    @cached_property
    def hook(self) -> FunctionGraphHook:
        """The hook for ``functiongraph_conn_id``."""
        return FunctionGraphHook(functiongraph_conn_id=self.functiongraph_conn_id)

    def resolve_function_urn(self) -> FunctionUrn:
        """The function's URN (once templates are rendered); a name is completed from the connection."""
        if self._resolved_urn is None:
            self._resolved_urn = self.hook.resolve_urn(
                self.function_urn,
                function_name=self.function_name,
                package=self.package,
                qualifier=self.qualifier,
                alias=self.alias,
            )
        return self._resolved_urn

    def function_label(self) -> str:
        """The URN once resolved, else the URN or name as given (for messages)."""
        if self._resolved_urn is not None:
            return str(self._resolved_urn)
        return str(self.function_urn or self.function_name)
