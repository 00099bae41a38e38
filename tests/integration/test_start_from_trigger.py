"""
``start_from_trigger`` in a real deployment: the scheduler defers the task itself, the triggerer renders
its templates (a mapped task's values too) and invokes, and the task ends there: no worker process runs
for it (a task instance no worker ran has no hostname). Before Airflow 3.3 the same DAG starts its tasks
on workers, whose logs say why. A triggerer restart while a started invocation runs does not invoke it
again.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from airflow_provider_fgs.compat import AIRFLOW_V_3_3_PLUS

from .conftest import INTEGRATION_TIMEOUT, RUN_TIMEOUT, Deployment
from .processes import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(INTEGRATION_TIMEOUT),
    pytest.mark.usefixtures("functiongraph_connection"),
]
needs_3_3 = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="the scheduler starts tasks in the triggerer from 3.3"
)


def _runs(count_file: Path) -> int:
    return len(count_file.read_text().splitlines()) if count_file.exists() else 0


def _hosts(deployment: Deployment, dag_id: str, run_id: str) -> dict[str, str]:
    """``{task: hostname}`` (mapped: ``task[i]``); empty where no worker ever ran the task instance."""
    return {
        ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti.get("hostname") or ""
        for ti in deployment.api.task_instances(dag_id, run_id)
    }


@pytest.mark.every_line
def test_tasks_started_in_the_triggerer_render_invoke_and_end_there(deployment: Deployment) -> None:
    api = deployment.api
    dag_id = "functiongraph_start_from_trigger"
    run_id = api.start_run(dag_id)

    final = api.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)
    assert final == "success", api.task_states(dag_id, run_id)
    greeting = api.xcom(dag_id, run_id, "greet")
    assert greeting["message"] == "Hello, Ada!"  # params rendered in the triggerer
    assert api.xcom(dag_id, run_id, "chained")["event"] == greeting  # an XComArg payload, pulled there
    assert [api.xcom(dag_id, run_id, "squares", map_index=i)["square"] for i in (0, 1)] == [4, 9]
    assert api.xcom(dag_id, run_id, "total") == 13  # the length of the mapped result, pushed from there
    assert api.xcom(dag_id, run_id, "shouted")["message"] == "Hello, ADA!"
    hosts = _hosts(deployment, dag_id, run_id)
    shouted_log = api.task_log(dag_id, run_id, "shouted")
    if AIRFLOW_V_3_3_PLUS:
        started = ["greet", "chained", "squares[0]", "squares[1]"]
        assert {task: hosts[task] for task in started} == dict.fromkeys(started, ""), hosts
        assert hosts["numbers"]  # plain tasks, on workers
        assert hosts["total"]
        # The DAG's macros exist where its file is parsed: that task resumed on a worker to start.
        assert hosts["shouted"]
        assert "user_defined_macros" in shouted_log, shouted_log
        assert "deferring from here" in shouted_log
        log = api.task_log(dag_id, run_id, "greet")
        assert "Started here by the scheduler, with no worker" in log, log
        assert "Ending the task here, in the triggerer" in log
    else:
        assert all(hosts.values()), hosts
        log = api.task_log(dag_id, run_id, "greet")
        assert "start_from_trigger needs Airflow 3.3" in log, log
        assert "defers from there" in log


@needs_3_3
def test_a_started_fan_out_runs_each_function_once_and_no_worker(
    deployment: Deployment, tmp_path: Path
) -> None:
    api = deployment.api
    dag_id = "functiongraph_started_fan_out"
    count_file = tmp_path / "runs.txt"
    run_id = api.start_run(dag_id, conf={"count_file": str(count_file)})

    final = api.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)

    assert _runs(count_file) == 20  # each function ran exactly once
    assert final == "success", api.task_states(dag_id, run_id)
    assert set(_hosts(deployment, dag_id, run_id).values()) == {""}  # no worker ran any of them
    result = api.xcom(dag_id, run_id, "invoke", map_index=11)
    assert result["index"] == 11
    assert api.xcom(dag_id, run_id, "invoke", key="request_id", map_index=11) == result["request_id"]


@needs_3_3
def test_a_started_invocation_is_not_sent_again_when_its_triggerer_restarts(
    deployment: Deployment, tmp_path: Path
) -> None:
    api = deployment.api
    airflow = deployment.airflow
    dag_id = "functiongraph_started_restart"
    count_file = tmp_path / "runs.txt"
    run_id = api.start_run(dag_id, conf={"count_file": str(count_file), "seconds": 14})
    wait_for("the handler to start", lambda: _runs(count_file) or None, 90, airflow.processes)

    airflow.replace_component(airflow.trigger_owner(run_id), signal.SIGTERM)

    final = api.wait_for_run(dag_id, run_id, timeout=120)
    log = api.task_log(dag_id, run_id, "invoke")
    assert _runs(count_file) == 1, log
    assert final == "failed", log
    assert "InvocationOutcomeUnknownError" in log


@needs_3_3
def test_a_batch_started_in_the_triggerer_runs_there_with_no_worker(
    deployment: Deployment, tmp_path: Path
) -> None:
    api = deployment.api
    dag_id = "functiongraph_batch_start_from_trigger"
    count_file = tmp_path / "runs.txt"
    run_id = api.start_run(dag_id, conf={"count_file": str(count_file)})

    final = api.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)

    assert final == "success", api.task_states(dag_id, run_id)
    assert _hosts(deployment, dag_id, run_id)["batch"] == ""  # no worker ran it
    assert api.xcom(dag_id, run_id, "batch") == [{"index": i, "doubled": 2 * i} for i in range(30)]
    assert api.xcom(dag_id, run_id, "batch", key="summary")["success"] == 30
    assert sorted(int(line) for line in count_file.read_text().split()) == list(range(30))
    assert "Started here by the scheduler, with no worker" in api.task_log(dag_id, run_id, "batch")
