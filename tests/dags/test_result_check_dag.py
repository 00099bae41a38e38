"""
``result_check`` with real ``dag.test()``: a function that answers 200 with a business error fails the task.

The check runs in the worker, also on the deferrable path (the trigger carries no callable), and the
task's XComs are pushed before it fails, as for a function error.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_fgs.compat import store_dag
from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.sensors.functiongraph import FunctionGraphAsyncInvocationSensor
from tests.dags.dagrun import states, xcoms

pytestmark = pytest.mark.usefixtures("emulator_connection", "airflow_db")


def is_happy(result: Any) -> bool:
    return bool(result["event"]["happy"])


def stored(dag: DAG) -> DAG:
    """``dag``, written to the metadata DB as the DAG processor would (``dag.test()`` needs it there)."""
    store_dag(dag)
    return dag


def check_dag(dag_id: str, *, deferrable: bool, happy: bool) -> DAG:
    with DAG(dag_id, schedule=None, catchup=False) as dag:
        InvokeFunctionOperator(
            task_id="by_callable",
            function_name="echo",
            payload={"happy": happy},
            result_check=is_happy,
            deferrable=deferrable,
        )
        InvokeFunctionOperator(
            task_id="by_path",
            function_name="echo",
            payload={"state": "ok" if happy else "quota exceeded"},
            result_check=("$.event.state", "ok"),
            deferrable=deferrable,
        )
        start = InvokeFunctionAsyncOperator(
            task_id="start_and_wait",
            function_name="echo",
            wait_for_completion=True,
            poll_interval=0.2,
            result_check=("$.status", "SUCCESS") if happy else lambda record: record["end_time"] == "never",
            deferrable=deferrable,
        )
        wait = FunctionGraphAsyncInvocationSensor(
            task_id="wait",
            function_name="echo",
            request_id="{{ ti.xcom_pull(task_ids='start_and_wait', key='request_id') }}",
            poke_interval=0.2,
            result_check=("$.status", "SUCCESS") if happy else ("$.error_code", "never"),
            deferrable=deferrable,
            trigger_rule="all_done",  # waits for the invocation even when the starting task's check failed
        )
        start >> wait
    return stored(dag)


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferrable"])
def test_passing_checks_let_the_tasks_succeed(deferrable: bool, emulator: Any) -> None:
    run = check_dag(f"result_check_pass_{deferrable}", deferrable=deferrable, happy=True).test()

    assert str(run.state) == "success"
    assert set(states(run).values()) == {"success"}
    pushed = xcoms(run)
    assert pushed["by_callable"]["return_value"]["event"] == {"happy": True}
    assert pushed["wait"]["return_value"]["status"] == "SUCCESS"


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferrable"])
def test_failing_checks_fail_the_tasks_naming_the_check(
    deferrable: bool, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    before = emulator.invocation_count("echo")
    capsys.readouterr()
    run = check_dag(f"result_check_fail_{deferrable}", deferrable=deferrable, happy=False).test()
    output = capsys.readouterr().out

    assert states(run) == {
        "by_callable": "failed",
        "by_path": "failed",
        "start_and_wait": "failed",
        "wait": "failed",
    }
    assert "ResultCheckError" in output
    assert "Result check is_happy failed for request" in output
    assert "the check returned False" in output
    assert "Result check $.event.state == 'ok' failed" in output
    assert "found 'quota exceeded'" in output
    assert "Result check check_dag.<locals>.<lambda> failed" in output
    assert (
        "Result check $.error_code == 'never' failed" in output
    )  # a record of a successful run: error code "0"
    assert "found '0'" in output
    # The function ran once per task (the check does not re-invoke) and the XComs were pushed anyway.
    assert emulator.invocation_count("echo") == before + 3
    pushed = xcoms(run)
    for task_id in ("by_callable", "by_path"):
        assert "return_value" not in pushed[task_id]
        assert pushed[task_id]["request_id"] in pushed[task_id]["log"]
    assert "return_value" not in pushed["start_and_wait"]
    assert re.fullmatch(r"[0-9a-f-]{36}", pushed["start_and_wait"]["request_id"])
