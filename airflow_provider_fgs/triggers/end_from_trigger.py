"""``end_from_trigger``: whether a deferred task may end in the triggerer instead of resuming on a worker,
and its XComs pushed from there as a worker would push them.

A task that ends in the triggerer gives Airflow's scheduler no resume to fail in the race of quick
triggers (apache/airflow#67287; docs/delivery-semantics.md) and needs no worker process at all. Some of
what a user may set on a task is done only by a worker, though; then the task resumes on one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent

from airflow_provider_fgs.compat import task_listeners_registered, uses_default_xcom_backend
from airflow_provider_fgs.triggers.supervisor import TaskTry, set_task_xcom

ENDS_HERE = "Ending the task here, in the triggerer: it does not resume on a worker"

# What only a worker does when a task ends: (operator argument, why, as the task log says it). A
# serialized task keeps only whether it has a callback (``has_on_success_callback``).
_ENDED_BY_A_WORKER: tuple[tuple[str, str], ...] = (
    ("result_check", "a result_check (evaluated on a worker)"),
    ("multiple_outputs", "multiple_outputs (a worker splits the result into XComs)"),
    ("outlets", "outlets (Airflow registers asset events only when a worker ends a task)"),
    ("map_index_template", "a map_index_template (rendered by a worker)"),
    ("post_execute", "a post_execute hook (run by a worker)"),
    (
        "on_success_callback",
        "an on_success_callback (Airflow's DAG processor runs only failure callbacks for a task that ends "
        "in the triggerer)",
    ),
)
_SERIALIZED_AS = {"on_success_callback": "has_on_success_callback"}


def task_needs_worker_to_end(argument: Callable[[str], Any]) -> list[str]:
    """
    What of the task's own settings needs a worker when it ends, one reason per setting.

    :param argument: reads one of the task's arguments by its ``BaseOperator`` name (``None`` or empty
        when not set): an operator's attribute on a worker, a serialized task's in the triggerer.
    """
    return [
        reason
        for name, reason in _ENDED_BY_A_WORKER
        if argument(name) or (name in _SERIALIZED_AS and argument(_SERIALIZED_AS[name]))
    ]


def deployment_needs_worker_to_end() -> list[str]:
    """What of this Airflow's configuration needs a worker when a task ends (in the calling process)."""
    return [
        reason
        for reason, applies in (
            (
                "a custom XCom backend (XComs from the triggerer would bypass it)",
                not uses_default_xcom_backend(),
            ),
            ("listeners (their task hooks run on a worker)", task_listeners_registered()),
        )
        if applies
    ]


def operator_argument(task: Any) -> Callable[[str], Any]:
    """Read an operator's arguments by name (``post_execute`` is kept under another attribute)."""

    def argument(name: str) -> Any:
        if name == "post_execute":
            return getattr(task, "_post_execute_hook", None)
        return getattr(task, name, None)

    return argument


def check_end_from_trigger(task: Any, end_from_trigger: bool | None) -> None:
    """
    Refuse ``end_from_trigger=True`` together with what only a worker does when a task ends.

    :raises ValueError: naming the task and the setting it cannot be combined with.
    """
    if not end_from_trigger:
        return
    names = [name for name, _ in _ENDED_BY_A_WORKER if operator_argument(task)(name)]
    if names:
        raise ValueError(
            f"{type(task).__name__} {task.task_id!r}: end_from_trigger=True cannot be combined with "
            f"{' and '.join(names)}, which a worker handles when the task ends; leave end_from_trigger "
            "unset to resume on a worker"
        )


def may_end_in_triggerer(end_from_trigger: bool | None, needs: list[str], log: Any) -> bool:
    """
    Whether a task may end in the triggerer, given what ``needs`` a worker; when it may not, ``log``
    says why (a warning when ``end_from_trigger=True`` asked for it).
    """
    if end_from_trigger is False:
        return False
    if needs:
        say = log.warning if end_from_trigger else log.info
        say("The task resumes on a worker after the wait: it has %s", " and ".join(needs))
        return False
    return True


def worker_decides_end(task: Any, end_from_trigger: bool | None) -> bool:
    """On a worker, just before deferring: whether ``task``'s trigger may end it (logged when not)."""
    needs = task_needs_worker_to_end(operator_argument(task)) + deployment_needs_worker_to_end()
    return may_end_in_triggerer(end_from_trigger, needs, task.log)


def maps_result(task: Any, map_index: int | None) -> bool:
    """
    Whether ``task``'s ``return_value`` must carry the length a mapped task downstream expands over
    (a worker pushes it so; a task that is mapped itself does not: downstream counts its instances).
    """
    if map_index is not None and map_index >= 0:
        return False
    if callable(getattr(task, "has_dag", None)) and not task.has_dag():
        return False
    return next(iter(task.iter_mapped_dependants()), None) is not None


async def end_here_with_xcoms(
    trigger: BaseTrigger,
    task_instance: Any,
    xcoms: dict[str, Any],
    *,
    say_outcome: Callable[[], None],
    maps_result: bool = False,
) -> TaskSuccessEvent | None:
    """
    End the task in the triggerer: write its last lines, push ``xcoms`` as a worker would, and return
    the event that ends it; ``None`` (logged) when the XComs could not all be pushed: the task then
    resumes on a worker instead.

    The lines come before the pushes. The triggerer's supervisor reads its trigger runner's log lines and
    its reports of ended triggers on two channels, and closes a trigger's log file when it reads that the
    trigger ended: lines it reads after that go to the triggerer's own log, not the task's (Airflow 3.1
    to 3.3; seen in CI when a trigger wrote them just before its end). Each push is a round trip through
    the supervisor, which meanwhile reads the lines written before it.

    :param say_outcome: writes the task's last lines (the outcome, and that the task ends here).
    :param maps_result: ``return_value`` carries its length for a mapped task downstream, as a worker
        records it; a value that cannot be mapped over is not pushed (the worker then fails the task).
    """
    task_try = TaskTry.of(task_instance)
    mapped_length = None
    if maps_result:
        value = xcoms.get("return_value")
        if not isinstance(value, dict | list | tuple):  # what a worker maps over (is_mappable_value)
            trigger.log.info(
                "The result of %s cannot be mapped over by the mapped task downstream; the task resumes "
                "on a worker",
                task_try.describe(),
            )
            return None
        mapped_length = len(value)
    say_outcome()
    try:
        for key, value in xcoms.items():
            await set_task_xcom(
                task_try, key, value, mapped_length=mapped_length if key == "return_value" else None
            )
    except Exception:
        trigger.log.warning(
            "Could not push the XComs of %s from the triggerer; the task resumes on a worker instead",
            task_try.describe(),
            exc_info=True,
        )
        return None
    return TaskSuccessEvent()
