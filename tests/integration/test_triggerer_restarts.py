"""
Deferred invocations survive triggerer restarts and failover, and never run the function twice.

Each test defers one 14 s invocation of ``counted_sleep`` (which appends one line per run to a file
named in the run's conf), disturbs the triggerer while the function runs, and checks the handler's
own count and the task's documented outcome (docs/delivery-semantics.md): the new trigger run finds
the claim of the earlier one and fails the task with ``InvocationOutcomeUnknownError`` instead of
invoking again. They run on the local deployment shape (one triggerer) and the production one
(PostgreSQL, Celery, two triggerers), each with fast triggerer failover: a rolling deploy (SIGTERM) on
the local one, a crash (SIGKILL) and the failover between two triggerers on the production one, the
rest on both. The module comes last in each shape, as it stops and replaces triggerers.
"""

from __future__ import annotations

import datetime
import signal
from pathlib import Path

import pytest

from .conftest import LOCAL, PRODUCTION, PRODUCTION_SHAPE, SHAPES, Deployment
from .processes import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(420),
    pytest.mark.usefixtures("functiongraph_connection"),
]
on_both_shapes = pytest.mark.parametrize("deployment", SHAPES, indirect=True)

DAG_ID = "functiongraph_deferred_restart"
SECONDS = 14  # counted_sleep times out after 18 s; a killed run fails safe 10 + 28 s after it sent


def _runs(count_file: Path) -> int:
    return len(count_file.read_text().splitlines()) if count_file.exists() else 0


def _start_deferred_invocation(deployment: Deployment, count_file: Path) -> str:
    api = deployment.api
    run_id = api.start_run(DAG_ID, conf={"count_file": str(count_file), "seconds": SECONDS})
    wait_for(
        "the handler to start (the trigger has sent the invocation)",
        lambda: _runs(count_file) or None,
        90,
        deployment.airflow.processes,
    )
    return run_id


def _assert_ran_once_and_failed_safe(deployment: Deployment, run_id: str, count_file: Path) -> None:
    api = deployment.api
    final = api.wait_for_run(DAG_ID, run_id, timeout=120)
    log = api.task_log(DAG_ID, run_id, "invoke")
    assert _runs(count_file) == 1, f"the handler ran {_runs(count_file)} times\n{log}"
    assert final == "failed", log
    assert api.task_states(DAG_ID, run_id) == {"invoke": "failed"}
    assert "InvocationOutcomeUnknownError" in log, log
    assert "may have run" in log
    assert "clear the task" in log


# A rolling deploy (SIGTERM) on the local shape, a crash (SIGKILL) on the production one. every_line: the
# claim is read and written through each line's supervisor.
@on_both_shapes
@pytest.mark.every_line
def test_a_replaced_triggerer_does_not_invoke_again(deployment: Deployment, tmp_path: Path) -> None:
    sig = signal.SIGTERM if deployment.shape == LOCAL else signal.SIGKILL
    airflow = deployment.airflow
    count_file = tmp_path / "runs.txt"
    run_id = _start_deferred_invocation(deployment, count_file)

    airflow.replace_component(airflow.trigger_owner(run_id), sig)

    _assert_ran_once_and_failed_safe(deployment, run_id, count_file)


# Pytest groups tests by the shape's position in the parameter list, not its value: the production shape
# keeps its place in SHAPES, or this test would run among the local ones and cost two redeployments.
_ONE_TRIGGERER = "the local shape has one triggerer; the production shape has two"


@pytest.mark.parametrize(
    "deployment",
    [pytest.param(LOCAL, id=LOCAL, marks=pytest.mark.skip(reason=_ONE_TRIGGERER)), PRODUCTION_SHAPE],
    indirect=True,
)
def test_two_triggerers_one_killed_does_not_invoke_again(deployment: Deployment, tmp_path: Path) -> None:
    airflow = deployment.airflow
    assert len(airflow.triggerers) == 2
    count_file = tmp_path / "runs.txt"
    run_id = _start_deferred_invocation(deployment, count_file)

    # Kill whichever triggerer runs the trigger: the other one takes it over.
    owner = airflow.trigger_owner(run_id)
    airflow.stop_component(owner, signal.SIGKILL)

    _assert_ran_once_and_failed_safe(deployment, run_id, count_file)
    # The tests that follow run with two triggerers again, the new one past its start: a triggerer busy
    # starting may miss heartbeats, and the other one then takes its triggers over.
    started = datetime.datetime.now(datetime.UTC)
    airflow.start_copy(owner)
    wait_for("the new triggerer to heartbeat", lambda: airflow.triggerer_heartbeats_since(started), 90)


@on_both_shapes
def test_async_invocation_waited_for_in_the_triggerer_starts_once(
    deployment: Deployment, tmp_path: Path
) -> None:
    api = deployment.api
    dag_id = "functiongraph_async_deferred_wait"
    count_file = tmp_path / "runs.txt"
    run_id = api.start_run(dag_id, conf={"count_file": str(count_file), "seconds": 3})

    final = api.wait_for_run(dag_id, run_id, timeout=120)
    log = api.task_log(dag_id, run_id, "start_and_wait")

    assert final == "success", log
    record = api.xcom(dag_id, run_id, "start_and_wait")
    assert record["status"] == "SUCCESS"
    assert record["request_id"] == api.xcom(dag_id, run_id, "start_and_wait", key="request_id")
    assert "Ending the task here, in the triggerer" in log  # no resume for apache/airflow#67287 to fail
    assert _runs(count_file) == 1


@on_both_shapes
@pytest.mark.every_line
def test_a_quick_deferrable_fan_out_all_succeeds_and_runs_each_function_once(
    deployment: Deployment, tmp_path: Path
) -> None:
    """
    20 mapped quick deferred invocations end in the triggerer, so Airflow's scheduler race of quick
    triggers (apache/airflow#67287: it failed 1 to 10 of these tasks when they resumed on a worker)
    has no resume to fail.
    """
    api = deployment.api
    dag_id = "functiongraph_deferred_fan_out"
    count_file = tmp_path / "runs.txt"
    run_id = api.start_run(dag_id, conf={"count_file": str(count_file)})

    final = api.wait_for_run(dag_id, run_id, timeout=150)
    states = api.task_states(dag_id, run_id)

    assert _runs(count_file) == 20, states  # each function ran exactly once
    assert final == "success", states
    assert list(states.values()) == ["success"] * 20
    # Ended by the trigger: its XComs and the function's log are where the worker would put them, in
    # every task's log although the 20 triggers end together (the triggerer reads a trigger's lines and
    # its end on two channels: end_here_with_xcoms).
    for index in range(20):
        result = api.xcom(dag_id, run_id, "invoke", map_index=index)
        assert result["index"] == index
        assert api.xcom(dag_id, run_id, "invoke", key="request_id", map_index=index) == result["request_id"]
        log = api.task_log(dag_id, run_id, "invoke", map_index=index)
        assert f":counted_sleep:latest succeeded: request id {result['request_id']}" in log, (index, log)
        assert "Ending the task here, in the triggerer" in log


_BATCH_ON_LOCAL = "the batch's restart runs on the local shape (one SIGKILL is enough for CI's time)"


@pytest.mark.parametrize(
    "deployment",
    [
        pytest.param(LOCAL, id=LOCAL),
        pytest.param(
            PRODUCTION, id=PRODUCTION, marks=[pytest.mark.production, pytest.mark.skip(_BATCH_ON_LOCAL)]
        ),
    ],
    indirect=True,
)
def test_a_batch_resumes_after_its_triggerer_is_killed_and_runs_no_item_twice(
    deployment: Deployment, tmp_path: Path
) -> None:
    """
    A triggerer SIGKILLed in the middle of a batch: the new one resumes it from the ledger once the dead
    run's lease lapses; items that ended are not invoked again, items it had claimed end "outcome
    unknown" (at most two windows of max_concurrency), and the rest is invoked.
    """
    from .dags.functiongraph_restarts import BATCH_CONCURRENCY, BATCH_ITEMS

    api, airflow = deployment.api, deployment.airflow
    dag_id = "functiongraph_batch_restart"
    count_file = tmp_path / "runs.txt"
    run_id = api.start_run(dag_id, conf={"count_file": str(count_file)})
    wait_for(
        "a third of the batch to run",
        lambda: _runs(count_file) >= BATCH_ITEMS // 3 or None,
        120,
        airflow.processes,
    )

    airflow.replace_component(airflow.trigger_owner(run_id), signal.SIGKILL)

    final = api.wait_for_run(dag_id, run_id, timeout=240)
    log = api.task_log(dag_id, run_id, "batch")
    runs = [int(line) for line in count_file.read_text().split()]
    assert len(runs) == len(set(runs)), (
        f"items ran twice: {sorted(i for i in set(runs) if runs.count(i) > 1)}"
    )
    summary = api.xcom(dag_id, run_id, "batch", key="summary")
    assert final == "success", log
    assert "Resuming the batch" in log, log
    assert 0 < summary["outcome_unknown"] <= 2 * BATCH_CONCURRENCY, summary
    assert summary["success"] + summary["outcome_unknown"] == BATCH_ITEMS, summary
    assert summary["success"] <= len(runs) <= BATCH_ITEMS  # an unknown item may or may not have run
