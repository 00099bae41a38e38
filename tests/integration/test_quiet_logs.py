"""
A normal deferred invocation writes no ERROR or WARNING line to the task log, the triggerer's log or the
log of the workers' supervisors (in this LocalExecutor deployment, the scheduler's), in a real
deployment. A task started in the triggerer writes the one line docs/delivery-semantics.md explains.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fgs.compat import AIRFLOW_V_3_3_PLUS

from .conftest import INTEGRATION_TIMEOUT, RUN_TIMEOUT, Deployment

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(INTEGRATION_TIMEOUT),
    pytest.mark.usefixtures("functiongraph_connection"),
]
LOUD = re.compile(r"\[(error|warning|critical)\s*\]")
"""The level of a line of a component's log (Airflow's console format: ``... [warning  ] message``)."""


def _loud_task_events(deployment: Deployment, dag_id: str, run_id: str) -> list[str]:
    """The ERROR and WARNING events of every task instance's log (worker and trigger lines alike)."""
    api = deployment.api
    loud = []
    for ti in api.task_instances(dag_id, run_id):
        for event in api.task_log_events(dag_id, run_id, ti["task_id"], map_index=ti["map_index"]):
            if isinstance(event, dict) and str(event.get("level", "")).lower() in ("error", "warning"):
                loud.append(f"{ti['task_id']}[{ti['map_index']}]: {event.get('event')}")
    return loud


def _loud_component_lines(path: Path, start: int, dag_id: str) -> list[str]:
    """The ERROR and WARNING lines a component logged about ``dag_id`` after byte ``start`` of its log."""
    with path.open("rb") as log:
        log.seek(start)
        text = log.read().decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if dag_id in line and LOUD.search(line)]


def _run(deployment: Deployment, dag_id: str, tmp_path: Path) -> tuple[str, dict[str, list[str]]]:
    """Run ``dag_id`` once; its run id and the loud lines of the triggerer's and the scheduler's logs."""
    logs = {name: deployment.airflow.process(name).log_path for name in ("triggerer", "scheduler")}
    starts = {name: path.stat().st_size for name, path in logs.items()}
    api = deployment.api
    run_id = api.start_run(dag_id, conf={"count_file": str(tmp_path / "runs.txt")})
    final = api.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)
    assert final == "success", api.task_states(dag_id, run_id)
    loud = {name: _loud_component_lines(path, starts[name], dag_id) for name, path in logs.items()}
    return run_id, loud


def test_a_deferred_fan_out_logs_no_error_or_warning(deployment: Deployment, tmp_path: Path) -> None:
    dag_id = "functiongraph_deferred_fan_out"
    run_id, loud = _run(deployment, dag_id, tmp_path)
    assert loud == {"triggerer": [], "scheduler": []}
    assert _loud_task_events(deployment, dag_id, run_id) == []


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="the scheduler starts tasks in the triggerer from 3.3")
def test_a_started_fan_out_logs_only_the_first_claim_read(deployment: Deployment, tmp_path: Path) -> None:
    dag_id = "functiongraph_started_fan_out"
    run_id, loud = _run(deployment, dag_id, tmp_path)
    assert loud["scheduler"] == []
    assert _loud_task_events(deployment, dag_id, run_id) == []
    unexplained: list[Any] = [
        line
        for line in loud["triggerer"]
        if not ("XCom not found" in line and "functiongraph_invoke_claim" in line)
    ]
    assert unexplained == []
    assert len(loud["triggerer"]) <= 20  # at most one per invocation: its claim's first read


@pytest.mark.parametrize("dag_id", ["functiongraph_batch_deferred", "functiongraph_batch_on_worker"])
def test_a_batch_logs_no_error_or_warning(deployment: Deployment, tmp_path: Path, dag_id: str) -> None:
    run_id, loud = _run(deployment, dag_id, tmp_path)
    assert loud == {"triggerer": [], "scheduler": []}
    assert _loud_task_events(deployment, dag_id, run_id) == []
    runs = (tmp_path / "runs.txt").read_text().split()
    assert sorted(map(int, runs)) == list(range(60))
