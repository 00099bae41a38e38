"""
Cancel on kill, in a real deployment: a user marks tasks failed through the REST API while the async
invocations they started are still running, one waited for in the worker (``on_kill`` in the task
process) and one in the triggerer (``BaseTrigger.on_kill`` on Airflow 3.3). Each invocation must end
DISCARD in the emulator, long before the function's 300 s of work. So must the invocation of a deferred
wait whose ``execution_timeout`` passes (Airflow stops that trigger without ``on_kill``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.protocol.async_invoke import AsyncInvocationStatus

from .conftest import INTEGRATION_TIMEOUT, RUN_TIMEOUT, Deployment

pytestmark = [pytest.mark.integration, pytest.mark.timeout(INTEGRATION_TIMEOUT)]
CANCEL_DAG = "functiongraph_cancel"
TIMEOUT_DAG = "functiongraph_deferral_timeout"
TASKS = {"wait_in_worker": "running", "wait_in_triggerer": "deferred"}
FUNCTIONS = {"wait_in_worker": "long_job", "wait_in_triggerer": "long_wait"}


def _wait(what: str, probe: Any, timeout: float = RUN_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"Timed out waiting for {what}")


# every_line: before Airflow 3.3 the trigger tells a user's action by the task's state (no on_kill).
@pytest.mark.every_line
def test_marking_tasks_failed_cancels_their_invocations(
    deployment: Deployment, functiongraph_connection: dict[str, Any], probe_hook: FunctionGraphHook
) -> None:
    api = deployment.api
    run_id = api.start_run(CANCEL_DAG)

    def waiting() -> bool:
        states = api.task_states(CANCEL_DAG, run_id)
        return all(states.get(task) == state for task, state in TASKS.items())

    _wait(f"both tasks to wait ({TASKS})", waiting)
    request_ids = {task: api.xcom(CANCEL_DAG, run_id, task, key="request_id") for task in TASKS}

    def status(task: str) -> AsyncInvocationStatus | None:
        return probe_hook.get_async_invocation(FUNCTIONS[task], request_ids[task])

    _wait("both invocations to run", lambda: all((s := status(t)) and s.status == "RUNNING" for t in TASKS))
    # A deferred task is "deferred" before a triggerer picks its trigger up; only a running trigger can
    # cancel (marked failed earlier, nothing runs that could): wait for the triggerer's "starting" line.
    _wait(
        "the triggerer to start the deferred task's trigger",
        lambda: (
            "wait_in_triggerer/-1/1" in (log := api.task_log(CANCEL_DAG, run_id, "wait_in_triggerer"))
            and " starting" in log
        ),
    )

    for task in TASKS:
        api.set_task_state(CANCEL_DAG, run_id, task, "failed")

    ended = _wait(
        "both invocations to be cancelled",
        lambda: all((s := status(t)) and not s.is_pending for t in TASKS) and {t: status(t) for t in TASKS},
        timeout=RUN_TIMEOUT / 2,
    )
    assert {task: record.status for task, record in ended.items()} == dict.fromkeys(TASKS, "DISCARD")
    assert api.wait_for_run(CANCEL_DAG, run_id) == "failed"
    assert api.task_states(CANCEL_DAG, run_id) == dict.fromkeys(TASKS, "failed")
    for task in TASKS:  # each side cancelled its own invocation (on_kill in the worker, the trigger)
        assert "Cancelled async invocation" in api.task_log(CANCEL_DAG, run_id, task), task


# every_line: before 3.3 the cancelled trigger cancels too (the task left the deferred state), and the
# resumed task then finds the invocation ended.
@pytest.mark.every_line
def test_a_deferred_wait_past_its_execution_timeout_cancels_its_invocation(
    deployment: Deployment, functiongraph_connection: dict[str, Any], probe_hook: FunctionGraphHook
) -> None:
    api = deployment.api
    run_id = api.start_run(TIMEOUT_DAG)

    assert api.wait_for_run(TIMEOUT_DAG, run_id) == "failed"
    request_id = api.xcom(TIMEOUT_DAG, run_id, "wait_too_long", key="request_id")
    record = _wait(
        "the invocation to end",
        lambda: (s := probe_hook.get_async_invocation("long_wait", request_id)) and not s.is_pending and s,
        timeout=30,
    )
    assert record.status == "DISCARD"  # ended by the cancel, long before the function's 300 s
    log = api.task_log(TIMEOUT_DAG, run_id, "wait_too_long")
    # 3.3 cancels in the resumed task ("the deferred wait failed"); before 3.3 the cancelled trigger may
    # cancel first (its task left the deferred state), and the resumed task then finds it ended.
    assert "Cancelled async invocation" in log
    assert "TaskDeferralTimeout" in log
