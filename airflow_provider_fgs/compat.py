"""
What differs between the Airflow lines this provider supports (3.1, 3.2, 3.3), in one place.

Everything else in the package imports Airflow's public API directly. Each difference here is chosen
by the running Airflow's version, never by catching an ``ImportError``, so a broken install fails
loudly instead of silently taking the other branch. ``docs/compatibility.md`` lists the differences.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION_STRING

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "conf",
    "dag_bag",
    "deferred_task_left_deferral",
    "require_airflow",
]


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise RuntimeError(f"Cannot read the Airflow version from {version!r}")
    return int(match[1]), int(match[2])


#: ``(major, minor)`` of the running Airflow, e.g. ``(3, 1)``.
AIRFLOW_VERSION: tuple[int, int] = _major_minor(AIRFLOW_VERSION_STRING)
AIRFLOW_V_3_2_PLUS: bool = AIRFLOW_VERSION >= (3, 2)
#: From 3.3 the triggerer calls ``BaseTrigger.on_kill()`` when a user marks a deferred task failed or
#: success or clears it, and never on a triggerer shutdown or redistribution.
AIRFLOW_V_3_3_PLUS: bool = AIRFLOW_VERSION >= (3, 3)


def require_airflow(minimum: tuple[int, int], feature: str) -> None:
    """
    Fail clearly when ``feature`` needs a newer Airflow line than the running one.

    :param minimum: the oldest ``(major, minor)`` line the feature works on.
    :param feature: what the user asked for, named in the message.
    :raises RuntimeError: when the running Airflow is older than ``minimum``.
    """
    if minimum > AIRFLOW_VERSION:
        raise RuntimeError(
            f"{feature} needs Airflow {minimum[0]}.{minimum[1]} or newer; "
            f"this is Airflow {AIRFLOW_VERSION_STRING}."
        )


# Configuration: the Task SDK's ``airflow.sdk.conf`` from 3.2; before that only the core parser.
# mypy checks against the newest line (``TYPE_CHECKING`` takes the first branch).
if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
    from airflow.sdk import conf
else:
    from airflow.configuration import conf


def dag_bag(dag_folder: str) -> Any:
    """
    Parse the DAG files of ``dag_folder`` into a ``DagBag`` (for tests and the demo; never at runtime).

    The class moved to ``airflow.dag_processing.dagbag`` in 3.2 (the old path warns there).

    :param dag_folder: directory of the DAG files.
    """
    if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=dag_folder)


async def deferred_task_left_deferral(trigger: Any) -> bool:
    """
    Before 3.3 (no ``BaseTrigger.on_kill``): whether the task of a cancelled ``trigger`` has left the
    deferred state, i.e. a user marked it failed or success or cleared it.

    A triggerer shutting down or handing the trigger to another triggerer leaves the task deferred: the
    answer is then ``False``, as it is whenever the state cannot be read (never act on a guess).
    """
    import asyncio

    ti = getattr(trigger, "task_instance", None)
    if ti is None:
        return False
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        states = await asyncio.to_thread(
            RuntimeTaskInstance.get_task_states,
            dag_id=ti.dag_id,
            task_ids=[ti.task_id],
            run_ids=[ti.run_id],
            map_index=ti.map_index,
        )
        state = states[ti.run_id][ti.task_id]
    except Exception:
        return False
    return state is not None and str(state) != "deferred"
