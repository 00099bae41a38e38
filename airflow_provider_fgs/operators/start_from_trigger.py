"""``start_from_trigger``: a deferrable invocation that the scheduler hands straight to the triggerer.

From Airflow 3.3 the scheduler defers such a task itself (``TaskInstance.defer_task``) with the
operator's ``start_trigger_args``, and the triggerer renders its templates: no worker process runs
unless the task resumes on one. What the scheduler does when it queues a task for a worker (pools,
task concurrency limits) and what a worker does before ``execute`` (``on_execute_callback``,
``pre_execute``) then never happens, so those settings cannot be combined with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_fgs.compat import AIRFLOW_V_3_3_PLUS, AIRFLOW_VERSION

DEFAULT_POOL = "default_pool"

# What only happens when a task starts on a worker: (argument, why, for the error message).
_STARTED_BY_A_WORKER: tuple[tuple[str, str], ...] = (
    ("max_active_tis_per_dag", "the scheduler applies it when it queues a task for a worker"),
    ("max_active_tis_per_dagrun", "the scheduler applies it when it queues a task for a worker"),
    ("pool", "a task takes its pool slots when it is queued for a worker"),
    ("pool_slots", "a task takes its pool slots when it is queued for a worker"),
    ("on_execute_callback", "a worker runs it before execute"),
    ("pre_execute", "a worker runs it before execute"),
)


def _is_set(name: str, value: Any) -> bool:
    if name == "pool":
        return value not in (None, DEFAULT_POOL)
    if name == "pool_slots":
        return value not in (None, 1)
    return bool(value)


def check_start_from_trigger(
    operator: str, task_id: str, *, deferrable: bool, arguments: Mapping[str, Any]
) -> None:
    """
    Refuse ``start_from_trigger=True`` where it cannot keep what the task asks for.

    :param operator: the operator's class name, for the message.
    :param task_id: the task id, for the message.
    :param deferrable: the task's ``deferrable``.
    :param arguments: the task's ``BaseOperator`` arguments by name (as given, or as attributes).
    :raises ValueError: naming the task and the setting, when the DAG is parsed.
    """
    if not deferrable:
        raise ValueError(
            f"{operator} {task_id!r}: start_from_trigger=True needs deferrable=True (a task started in "
            "the triggerer waits there)"
        )
    conflicts = [
        f"{name}={arguments.get(name)!r} ({why})"
        for name, why in _STARTED_BY_A_WORKER
        if _is_set(name, arguments.get(name))
    ]
    if conflicts:
        raise ValueError(
            f"{operator} {task_id!r}: start_from_trigger=True cannot be combined with "
            f"{'; '.join(conflicts)}: a task started in the triggerer is never queued for a worker. "
            "Leave start_from_trigger unset to start on a worker and defer from there"
        )


def unavailable_reason() -> str | None:
    """Why this Airflow cannot start a task in the triggerer with its templates rendered, or ``None``."""
    if AIRFLOW_V_3_3_PLUS:
        return None
    return (
        f"start_from_trigger needs Airflow 3.3 (this is {AIRFLOW_VERSION[0]}.{AIRFLOW_VERSION[1]}: its "
        "scheduler does not start tasks in the triggerer and its triggerer does not render their "
        "templates); the task started on a worker and defers from there"
    )


def base_arguments(task: Any) -> dict[str, Any]:
    """The ``BaseOperator`` arguments of ``task`` that ``start_from_trigger`` is checked against."""
    return {
        "max_active_tis_per_dag": task.max_active_tis_per_dag,
        "max_active_tis_per_dagrun": task.max_active_tis_per_dagrun,
        "pool": task.pool,
        "pool_slots": task.pool_slots,
        "on_execute_callback": task.on_execute_callback,
        "pre_execute": task._pre_execute_hook,
    }


def arm_start_from_trigger(
    task: Any,
    *,
    start_from_trigger: bool,
    deferrable: bool,
    start_trigger_args: Any,
    trigger_arguments: Callable[[], dict[str, Any]],
) -> str | None:
    """
    For a task built with ``start_from_trigger=True``: refuse what it cannot keep, then, when this Airflow
    starts tasks in the triggerer, set the task's ``start_from_trigger`` and its ``start_trigger_args``
    (``start_trigger_args`` with the task's ``trigger_arguments()``). Nothing for a task built without it.

    :return: why this Airflow starts the task on a worker instead (for its log), or ``None``.
    :raises ValueError: as :func:`check_start_from_trigger`.
    """
    if not start_from_trigger:
        return None
    check_start_from_trigger(
        type(task).__name__, task.task_id, deferrable=deferrable, arguments=base_arguments(task)
    )
    unavailable = unavailable_reason()
    if unavailable is None:
        task.start_from_trigger = True
        task.start_trigger_args = dataclasses.replace(
            start_trigger_args,
            trigger_kwargs={"start_from_trigger": True, "arguments": trigger_arguments()},
        )
    return unavailable
