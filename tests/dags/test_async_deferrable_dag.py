"""``InvokeFunctionAsyncOperator(wait_for_completion=True, deferrable=True)`` under real ``dag.test()``."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest

from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from tests.dags.dagrun import serialize, states, xcoms

pytestmark = pytest.mark.usefixtures("airflow_db", "emulator_connection")


def run_start_and_wait(dag_id: str, function: str, payload: Any) -> Any:
    from airflow.sdk import DAG

    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
        InvokeFunctionAsyncOperator(
            task_id="start_and_wait",
            function_name=function,
            payload=payload,
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.2,
        )
    serialize(dag)
    return dag.test()


def test_deferred_wait_returns_the_status_record_and_starts_once(
    emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    before = emulator.invocation_count("square")
    capsys.readouterr()
    run = run_start_and_wait("fgs_async_deferred_wait", "square", {"x": 3})
    output = capsys.readouterr().out

    assert states(run) == {"start_and_wait": "success"}, output[-3000:]
    pushed = xcoms(run)["start_and_wait"]
    assert pushed["return_value"]["status"] == "SUCCESS"
    assert pushed["return_value"]["request_id"] == pushed["request_id"]
    assert f"Async invocation {pushed['request_id']} of {emulator.urn('square')} ended SUCCESS" in output
    assert emulator.invocation_count("square") == before + 1


def test_deferred_wait_fails_the_task_when_the_invocation_fails(
    emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    run = run_start_and_wait("fgs_async_deferred_fail", "divide", {"numerator": 1, "denominator": 0})
    output = capsys.readouterr().out

    assert states(run) == {"start_and_wait": "failed"}
    assert "FunctionError" in output
    assert "division by zero" in output
    assert "missing 1 required positional argument" not in output
