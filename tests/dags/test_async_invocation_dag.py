"""The async-invocation example DAG, waiting in the worker (polling operator, poke-mode sensor)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dags.dagrun import run_dag, states, xcoms

pytestmark = pytest.mark.usefixtures("emulator_connection")


def test_waiting_in_the_worker_returns_the_status_record(example_dag_bag: Any) -> None:
    run = run_dag(example_dag_bag, "functiongraph_async")

    assert str(run.state) == "success"
    assert states(run) == {"start_and_wait": "success", "start": "success", "wait": "success"}
    pushed = xcoms(run)
    waited = pushed["start_and_wait"]
    assert waited["return_value"]["status"] == "SUCCESS"
    assert waited["return_value"]["request_id"] == waited["request_id"]
    assert pushed["start"]["return_value"] == pushed["start"]["request_id"]
    assert pushed["wait"]["return_value"]["request_id"] == pushed["start"]["request_id"]
    assert pushed["wait"]["return_value"]["status"] == "SUCCESS"


def test_a_failed_async_invocation_fails_the_waiting_tasks(
    example_dag_bag: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    run_conf = {"function": "divide", "payload": {"numerator": 1, "denominator": 0}}
    run = run_dag(example_dag_bag, "functiongraph_async", run_conf=run_conf)
    output = capsys.readouterr().out

    assert str(run.state) == "failed"
    assert states(run) == {"start_and_wait": "failed", "start": "success", "wait": "failed"}
    assert "FunctionError" in output
    assert "ended FAIL" in output
    assert "division by zero" in output
