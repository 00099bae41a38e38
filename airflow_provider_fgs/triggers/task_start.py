"""In the triggerer: the invocation a task started there asks for (``start_from_trigger``, Airflow 3.3+).

The scheduler defers such a task without any worker, with the arguments its operator put in
``start_trigger_args`` (a mapped task: the class's, the same for every map index). The trigger then
reads the rest from its task instance, which the triggerer builds from the serialized DAG:

* a mapped task's arguments are its ``partial`` arguments plus its own expanded values (a literal list,
  or an upstream task's ``return_value``), chosen for its map index as a worker chooses them;
* an ``XComArg`` argument is pulled from the upstream task, as a worker resolves it;
* the operator's template fields are rendered with the task's context and its DAG's Jinja settings
  (native rendering included); values pulled from XCom are not rendered again, as on a worker.

What cannot be done here (a ``.map()``/``.zip()`` of an XComArg, a DAG's ``user_defined_macros``,
which the serialized DAG does not keep) raises :class:`StartOnWorker`: the task then resumes on a
worker, which renders it and defers from there.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_fgs.compat import uses_default_xcom_backend
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.triggers.end_from_trigger import maps_result, task_needs_worker_to_end
from airflow_provider_fgs.triggers.supervisor import read_xcom

DEFAULT_CONN_ID = "functiongraph_default"
_OWN_ARGUMENTS = (*Invocation.operator_argument_names(), "functiongraph_conn_id", "end_from_trigger")
"""The operator's own arguments, which a DAG's ``default_args`` may give to a mapped task."""

Pull = Callable[[str, str, int], Awaitable[Any]]
"""Read an XCom of this DAG run: ``(task_id, key, map_index) -> value`` (``None`` when missing)."""


class StartOnWorker(Exception):
    """The triggerer cannot prepare this task's invocation; a worker must start it (the message says why)."""


@dataclass(frozen=True)
class StartedTask:
    """
    What a task started in the triggerer asks for, its templates rendered.

    :param functiongraph_conn_id: the connection to call FunctionGraph with.
    :param invocation: the invocation, rendered but not yet checked.
    :param end_from_trigger: the task's ``end_from_trigger`` setting.
    :param needs_worker_to_end: what of the task's settings needs a worker when it ends.
    :param push_xcoms: the task's ``do_xcom_push``.
    :param maps_result: the task's ``return_value`` must carry its length (a mapped task downstream).
    """

    functiongraph_conn_id: str
    invocation: Invocation
    end_from_trigger: bool | None
    needs_worker_to_end: list[str]
    push_xcoms: bool
    maps_result: bool


async def started_task(task_instance: Any, arguments: Mapping[str, Any] | None) -> StartedTask:
    """
    Read the invocation of a task that the scheduler started in the triggerer.

    :param task_instance: the trigger's task instance, with its serialized ``task`` (Airflow 3.3).
    :param arguments: the operator's arguments from ``start_trigger_args`` (``None`` for a mapped task,
        whose arguments come from its ``partial`` and its expansion).
    :raises StartOnWorker: when only a worker can prepare this task.
    """
    task, arguments = await rendered_arguments(task_instance, arguments)

    def argument(name: str) -> Any:
        return arguments[name] if name in arguments else getattr(task, name, None)

    return StartedTask(
        functiongraph_conn_id=arguments.get("functiongraph_conn_id") or DEFAULT_CONN_ID,
        invocation=Invocation.from_operator_arguments(arguments),
        end_from_trigger=arguments.get("end_from_trigger"),
        needs_worker_to_end=task_needs_worker_to_end(argument),
        push_xcoms=bool(argument("do_xcom_push") if argument("do_xcom_push") is not None else True),
        maps_result=maps_result(task, task_instance.map_index),
    )


async def rendered_arguments(
    task_instance: Any, arguments: Mapping[str, Any] | None
) -> tuple[Any, dict[str, Any]]:
    """
    The serialized task of a task started in the triggerer, and its arguments as a worker would see them:
    upstream XComs pulled, a mapped task's value chosen for its map index, templates rendered.

    :param task_instance: the trigger's task instance, with its serialized ``task`` (Airflow 3.3).
    :param arguments: the operator's arguments from ``start_trigger_args`` (``None`` for a mapped task).
    :raises StartOnWorker: when only a worker can prepare this task.
    """
    task = getattr(task_instance, "task", None)
    if task is None:
        raise StartOnWorker("the triggerer did not hand this trigger its task")
    pull = _puller(task_instance)
    seen: set[int] = set()  # values pulled from XCom: never rendered again, as on a worker
    if arguments is None:
        arguments = await _mapped_arguments(task, task_instance.map_index, pull, seen)
    else:
        arguments = {name: await _resolved(value, pull, seen) for name, value in arguments.items()}
    return task, _rendered(task, task_instance, arguments, seen)


def _puller(task_instance: Any) -> Pull:
    async def pull(task_id: str, key: str, map_index: int) -> Any:
        from airflow.sdk.bases.xcom import BaseXCom

        if not uses_default_xcom_backend():
            raise StartOnWorker("it reads an upstream XCom through a custom XCom backend")
        value = await read_xcom(
            dag_id=task_instance.dag_id,
            run_id=task_instance.run_id,
            task_id=task_id,
            map_index=map_index,
            key=key,
        )
        return None if value is None else BaseXCom.deserialize_value(_Stored(value))

    return pull


@dataclass(frozen=True)
class _Stored:
    value: Any


async def _mapped_arguments(task: Any, map_index: int, pull: Pull, seen: set[int]) -> dict[str, Any]:
    partial = getattr(task, "partial_kwargs", None)
    expand_input = getattr(task, "expand_input", None)
    if partial is None or expand_input is None:
        raise StartOnWorker("its arguments were not given to its trigger")
    default_args = getattr(task.dag, "default_args", None) or {}
    arguments = {name: value for name, value in default_args.items() if name in _OWN_ARGUMENTS}
    arguments.update(partial)
    arguments.update(await _expanded(expand_input, map_index, pull, seen))
    return arguments


async def _expanded(expand_input: Any, map_index: int, pull: Pull, seen: set[int]) -> dict[str, Any]:
    """This map index's expanded arguments, chosen as Airflow's ``DictOfListsExpandInput`` does."""
    kind = type(expand_input).__name__
    value = expand_input.value
    if "ListOfDicts" in kind:  # expand_kwargs(): one dict of arguments per map index
        rows = await _pull_whole(value, pull, seen) if _is_xcom_arg(value) else value
        row = _item(rows, map_index)
        if not isinstance(row, Mapping) or any(_is_xcom_arg(item) for item in row.values()):
            raise StartOnWorker("it expands over arguments that only a worker resolves")
        return dict(row)
    if "DictOfLists" not in kind:
        raise StartOnWorker(f"it expands over {kind}, which only a worker resolves")
    if len(value) == 1:  # one mapped argument: this index's item (an upstream that is mapped too works)
        ((name, source),) = value.items()
        return {name: await _one_item(source, map_index, pull, seen)}
    sources = {
        name: await _pull_whole(source, pull, seen) if _is_xcom_arg(source) else source
        for name, source in value.items()
    }
    # Several mapped arguments: their cross product, the last one varying fastest.
    chosen = next(
        itertools.islice(itertools.product(*(_items(s) for s in sources.values())), map_index, None), None
    )
    if chosen is None:
        raise StartOnWorker(f"map index {map_index} is past its expanded arguments")
    return dict(zip(sources, chosen, strict=True))


async def _one_item(source: Any, map_index: int, pull: Pull, seen: set[int]) -> Any:
    if not _is_xcom_arg(source):
        return _item(source, map_index)
    upstream = source.operator
    if _is_mapped(upstream):  # a mapped upstream: the return value of the instance with this index
        item = await pull(upstream.task_id, source.key, map_index)
        if item is None:
            raise StartOnWorker(f"{upstream.task_id}[{map_index}] pushed no {source.key!r} to expand over")
        seen.add(id(item))
        return item
    return _item(await _pull_whole(source, pull, seen), map_index)


async def _pull_whole(source: Any, pull: Pull, seen: set[int]) -> Any:
    if not _is_plain_xcom_arg(source) or _is_mapped(source.operator):
        raise StartOnWorker("it expands over an XComArg that only a worker resolves")
    value = await pull(source.operator.task_id, source.key, -1)
    if value is None:
        raise StartOnWorker(f"{source.operator.task_id} pushed no {source.key!r} to expand over")
    for item in _items(value):
        seen.add(id(item))
    return value


def _items(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, str | bytes) or not hasattr(value, "__len__"):
        raise StartOnWorker(f"it expands over a {type(value).__name__}, which is not a list or dict")
    return list(value)


def _item(value: Any, map_index: int) -> Any:
    items = _items(value)
    if not 0 <= map_index < len(items):
        raise StartOnWorker(f"map index {map_index} is past its {len(items)} expanded values")
    return items[map_index]


def _is_xcom_arg(value: Any) -> bool:
    return any(cls.__name__.endswith("XComArg") for cls in type(value).__mro__)


def _is_plain_xcom_arg(value: Any) -> bool:
    return type(value).__name__.endswith("PlainXComArg")


def _is_mapped(operator: Any) -> bool:
    return getattr(operator, "partial_kwargs", None) is not None


async def _resolved(value: Any, pull: Pull, seen: set[int]) -> Any:
    """``value`` with each reference to an upstream XCom (an ``XComArg`` argument) replaced by its value."""
    reference = getattr(value, "data", None)
    if type(value).__name__ == "_XComRef" and isinstance(reference, Mapping):
        pulled = await pull(reference["task_id"], reference.get("key", "return_value"), -1)
        seen.add(id(pulled))
        return pulled
    if isinstance(value, Mapping):
        return {key: await _resolved(item, pull, seen) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)([await _resolved(item, pull, seen) for item in value])
    return value


def _rendered(task: Any, task_instance: Any, arguments: dict[str, Any], seen: set[int]) -> dict[str, Any]:
    """``arguments`` with the operator's template fields rendered as a worker renders them."""
    import jinja2

    templated = [name for name in getattr(task, "template_fields", ()) if name in arguments]
    if not templated:
        return arguments
    try:
        context = task_instance.get_template_context()
        renderer, environment = _renderer(task)
        rendered = dict(arguments)
        for name in templated:
            rendered[name] = renderer.render_template(arguments[name], context, environment, set(seen))
    except jinja2.TemplateError as err:
        raise StartOnWorker(
            f"its templates could not be rendered in the triggerer ({type(err).__name__}: {err}); a DAG's "
            "user_defined_macros and user_defined_filters exist only where its file is parsed"
        ) from None
    return rendered


def _renderer(task: Any) -> tuple[Any, Any]:
    """
    What renders ``task``'s templates, and its Jinja environment, as far as the serialized DAG keeps its
    settings (native rendering from the task or its DAG, the template search path).
    """
    from airflow.sdk.definitions._internal.templater import Templater, create_template_env

    native = getattr(task, "render_template_as_native_obj", None)
    if native is None:
        native = bool(getattr(task.dag, "render_template_as_native_obj", False))

    class TaskTemplater(Templater):
        template_ext = ()
        render_template_as_native_obj = native

    environment = create_template_env(
        native=native, searchpath=list(getattr(task.dag, "template_searchpath", None) or ()) or None
    )
    return TaskTemplater(), environment
