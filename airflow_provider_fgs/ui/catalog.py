"""Which FunctionGraph functions the deployment's DAGs call, read from their serialized form."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_fgs.protocol.urn import FunctionUrn

DEFAULT_CONN_ID = "functiongraph_default"
PROVIDER_MODULE = "airflow_provider_fgs."

# What each of the provider's task classes does with its function.
KINDS: dict[str, str] = {
    "InvokeFunctionOperator": "invoke",
    "_FunctionGraphDecoratedOperator": "invoke",
    "InvokeFunctionAsyncOperator": "invoke_async",
    "InvokeFunctionBatchOperator": "batch",
    "FunctionGraphAsyncInvocationSensor": "wait",
    "UpdateFunctionCodeOperator": "release",
    "PublishFunctionVersionOperator": "release",
    "UpdateFunctionAliasOperator": "release",
    "FunctionUpdatedSensor": "wait",
}
INVOKING_KINDS = frozenset({"invoke", "invoke_async"})
BATCH_KINDS = frozenset({"batch"})
_PARAM_TEMPLATE = re.compile(r"\{\{\s*params\.(\w+)\s*\}\}")


@dataclass(frozen=True)
class FunctionCall:
    """
    One task of a DAG that uses a function.

    :param dag_id: the DAG.
    :param task_id: the task.
    :param operator: the task's class (``@task.functiongraph`` for the decorator).
    :param kind: ``invoke``, ``invoke_async``, ``batch``, ``wait`` or ``release``.
    :param target: how the task names the function's version: ``latest``, a version, or ``!alias``.
    :param mapped: whether the task is mapped (``.expand``).
    :param task_type: the task's class name, as Airflow records it in each task instance's ``operator``.
    """

    dag_id: str
    task_id: str
    operator: str
    kind: str
    target: str
    mapped: bool
    task_type: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "task_id": self.task_id,
            "operator": self.operator,
            "kind": self.kind,
            "target": self.target,
            "mapped": self.mapped,
        }


@dataclass
class FunctionEntry:
    """
    A function, named as the DAGs name it, with the tasks that use it.

    :param conn_id: the connection (account, project, region) the tasks reach it through.
    :param function: ``package/name``, or the template text when the name is only known at run time.
    :param templated: whether ``function`` is a template that the DAG's params could not settle.
    :param calls: the tasks that use it.
    """

    conn_id: str
    function: str
    templated: bool = False
    calls: list[FunctionCall] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.conn_id, self.function)

    def matches(self, search: str) -> bool:
        """Whether ``search`` is part of the function's name or of a calling DAG's id (any case)."""
        needle = search.casefold()
        return needle in self.function.casefold() or any(
            needle in call.dag_id.casefold() for call in self.calls
        )

    def to_dict(self, calls_limit: int | None = None) -> dict[str, Any]:
        """
        The entry as the view's JSON gives it: its first ``calls_limit`` calling DAGs and calls (all when
        ``None``), and how many there are (a function called by 5,000 DAGs is one row, not 5,000).
        """
        dag_ids = sorted({call.dag_id for call in self.calls})
        return {
            "conn_id": self.conn_id,
            "function": self.function,
            "templated": self.templated,
            "dag_count": len(dag_ids),
            "dag_ids": dag_ids[:calls_limit],
            "calls_total": len(self.calls),
            "calls": [call.to_dict() for call in self.calls[:calls_limit]],
        }


def _task_fields(task: Mapping[str, Any]) -> dict[str, Any]:
    """
    A serialized task's fields, a mapped task's ``partial`` arguments included, and the function's of a
    task that takes them as one ``invocation`` (the batch operator).
    """
    fields: dict[str, Any] = dict(_plain(task))
    partial = fields.get("partial_kwargs") or {}
    for name, value in partial.items():
        fields.setdefault(name, _plain(value))
    invocation = _plain(fields.get("invocation"))
    if isinstance(invocation, dict):
        for name in ("function_urn", "function_name", "package", "qualifier", "alias"):
            fields.setdefault(name, _plain(invocation.get(name)))
    return fields


def _plain(value: Any) -> Any:
    """A serialized value without Airflow's ``{"__type": ..., "__var": ...}`` wrapper, when it has one."""
    return value["__var"] if isinstance(value, dict) and "__var" in value else value


def _kind(fields: Mapping[str, Any]) -> str | None:
    """What the task does with its function, or ``None`` for a task that is not the provider's."""
    task_type = str(fields.get("task_type") or "")
    if task_type in KINDS:
        return KINDS[task_type]
    if not str(fields.get("_task_module") or "").startswith(PROVIDER_MODULE) and (
        "functiongraph_conn_id" not in fields
    ):
        return None
    # A subclass of one of the provider's classes: an invocation when it sends a payload.
    return "invoke" if "payload" in (fields.get("template_fields") or ()) else "wait"


def _with_params(value: str, params: Mapping[str, Any]) -> tuple[str, bool]:
    """``value`` with ``{{ params.x }}`` as the DAG's default for ``x``; and whether a template is left."""

    def default(match: re.Match[str]) -> str:
        found = params.get(match.group(1))
        return found if isinstance(found, str) else match.group(0)

    rendered = _PARAM_TEMPLATE.sub(default, value)
    return rendered, "{{" in rendered or "{%" in rendered


def _dag_params(dag: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults of a serialized DAG's params (``[[name, {"default": ...}], ...]`` or a mapping)."""
    raw = dag.get("params") or []
    items = raw.items() if isinstance(raw, dict) else raw
    defaults: dict[str, Any] = {}
    for item in items:
        name, spec = item
        defaults[str(name)] = _plain(spec.get("default") if isinstance(spec, dict) else spec)
    return defaults


def _function_and_target(fields: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[str, str, bool]:
    """(``package/name`` or template text, version or alias the task targets, still templated)."""
    urn_text = fields.get("function_urn")
    qualifier = fields.get("qualifier")
    alias = fields.get("alias")
    if isinstance(urn_text, str) and urn_text:
        rendered, templated = _with_params(urn_text, params)
        if not templated:
            try:
                urn = FunctionUrn.parse(rendered)
            except ValueError:
                return rendered, "latest", False
            return f"{urn.package}/{urn.name}", urn.qualifier or "latest", False
        return rendered, "latest", True
    name, templated = _with_params(str(fields.get("function_name") or ""), params)
    package = fields.get("package") or "default"
    target = f"!{alias}" if alias else (qualifier or "latest")
    return (name if templated else f"{package}/{name}"), str(target), templated


Found = tuple[str, str, bool, FunctionCall]
"""What :func:`function_calls` finds per task: connection id, function, templated, call."""


def function_calls(dag_id: str, serialized: Mapping[str, Any]) -> list[Found]:
    """
    The tasks of one serialized DAG (``SerializedDagModel.data``) that use a function, each as
    (connection id, function, templated, call).
    """
    dag = serialized.get("dag") or {}
    params = _dag_params(dag)
    found = []
    for task in dag.get("tasks") or ():
        fields = _task_fields(task)
        kind = _kind(fields)
        if kind is None:
            continue
        function, target, templated = _function_and_target(fields, params)
        if not function:
            continue
        task_type = str(fields.get("task_type") or "")
        operator = str(fields.get("custom_operator_name") or task_type)
        if operator == "_FunctionGraphDecoratedOperator":
            operator = "@task.functiongraph"
        conn_id = str(fields.get("functiongraph_conn_id") or DEFAULT_CONN_ID)
        call = FunctionCall(
            dag_id=dag_id,
            task_id=str(fields.get("task_id")),
            operator=operator,
            kind=kind,
            target=target,
            mapped=bool(fields.get("_is_mapped")),
            task_type=task_type,
        )
        found.append((conn_id, function, templated, call))
    return found


def build_catalog(serialized_dags: Iterable[tuple[str, Mapping[str, Any]]]) -> list[FunctionEntry]:
    """The functions that ``serialized_dags`` ((dag id, serialized data) pairs) use, sorted by name."""
    return catalog_of(function_calls(dag_id, data) for dag_id, data in serialized_dags)


def catalog_of(calls_per_dag: Iterable[Iterable[Found]]) -> list[FunctionEntry]:
    """The functions that these DAGs' calls (each DAG's :func:`function_calls`) use, sorted by name."""
    entries: dict[tuple[str, str], FunctionEntry] = {}
    for found in calls_per_dag:
        for conn_id, function, templated, call in found:
            entry = entries.setdefault((conn_id, function), FunctionEntry(conn_id, function, templated))
            entry.calls.append(call)
    return sorted(entries.values(), key=lambda entry: (entry.function, entry.conn_id))


def readable_part(catalog: list[FunctionEntry], dag_ids: Set[str]) -> list[FunctionEntry]:
    """``catalog`` as a user who may read only ``dag_ids`` sees it: their calls, and only their functions."""
    part = []
    for entry in catalog:
        calls = [call for call in entry.calls if call.dag_id in dag_ids]
        if calls:
            part.append(FunctionEntry(entry.conn_id, entry.function, entry.templated, calls))
    return part
