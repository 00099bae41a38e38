"""``end_from_trigger``: whether a deferred task may end in the triggerer instead of resuming on a worker.

A task that ends in the triggerer gives Airflow's scheduler no resume to fail in the race of quick
triggers (apache/airflow#67287; docs/delivery-semantics.md). Some features need the worker, though.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_fgs.compat import task_listeners_registered, uses_default_xcom_backend


def check_end_from_trigger(task: Any, end_from_trigger: bool | None, *, result_check: Any) -> None:
    """
    Refuse ``end_from_trigger=True`` together with what runs on a worker.

    :raises ValueError: naming the task and the setting it cannot be combined with.
    """
    if not end_from_trigger:
        return
    needs = [
        name
        for name, set_ in (
            ("result_check", result_check is not None),
            ("multiple_outputs", task.multiple_outputs),
        )
        if set_
    ]
    if needs:
        raise ValueError(
            f"{type(task).__name__} {task.task_id!r}: end_from_trigger=True cannot be combined with "
            f"{' and '.join(needs)}, which run on a worker; leave it unset to resume on a worker"
        )


def may_end_in_triggerer(task: Any, end_from_trigger: bool | None, *, result_check: Any) -> bool:
    """
    Whether ``task``'s trigger may end it on success; when not, the task log says what needs a worker.

    Called on the worker just before deferring (the worker's listeners and XCom backend are the ones
    that would be skipped).
    """
    if end_from_trigger is False:
        return False
    needs_worker = [
        reason
        for reason, applies in (
            ("a result_check", result_check is not None),
            ("multiple_outputs", bool(task.multiple_outputs)),
            ("a mapped task downstream", _has_mapped_dependants(task)),
            ("a custom XCom backend", not uses_default_xcom_backend()),
            ("listeners registered in the worker", task_listeners_registered()),
        )
        if applies
    ]
    if needs_worker:
        log = task.log.warning if end_from_trigger else task.log.info
        log("The task resumes on a worker after the wait: it has %s", " and ".join(needs_worker))
        return False
    return True


def _has_mapped_dependants(task: Any) -> bool:
    """Whether a mapped task downstream maps over ``task``'s result (never, for a task outside a DAG)."""
    return bool(task.has_dag()) and next(task.iter_mapped_dependants(), None) is not None
