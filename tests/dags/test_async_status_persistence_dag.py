"""
Under real ``dag.test()``: waiting for an async invocation of a function without async status
persistence fails the task at once, before invoking and without Airflow's retries, instead of after
``missing_record_timeout`` (300 s by default) of polling for a record that can never appear.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pendulum
import pytest

from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from tests.dags.dagrun import serialize, states

pytestmark = pytest.mark.usefixtures("airflow_db", "emulator_connection")


def _run(
    dag_id: str, function: str, *, task_ids: tuple[str, ...] = ("start_and_wait",), **kwargs: Any
) -> Any:
    from airflow.sdk import DAG

    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
        for task_id in task_ids:
            InvokeFunctionAsyncOperator(
                task_id=task_id,
                function_name=function,
                wait_for_completion=True,
                poll_interval=0.2,
                retries=3,
                retry_delay=timedelta(seconds=0),
                **kwargs,
            )
    serialize(dag)
    return dag.test()


@pytest.mark.parametrize("deferrable", [False, True])
def test_a_wait_that_can_never_end_fails_at_once(
    emu: Any, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    capsys.readouterr()
    started = time.monotonic()
    run = _run(f"fgs_async_persistence_off_{deferrable}", "unrecorded", deferrable=deferrable)
    elapsed = time.monotonic() - started
    output = capsys.readouterr()
    log = output.out + output.err

    assert states(run) == {"start_and_wait": "failed"}, log[-3000:]
    (ti,) = run.get_task_instances()
    assert ti.try_number == 1  # a permanent failure: no Airflow retry
    assert elapsed < 60  # not after the 300 s missing_record_timeout
    assert emu.invocation_count("unrecorded") == 0
    assert emu.request_count("invoke_async") == 0
    assert "AsyncStatusPersistenceDisabledError" in log
    assert "enable_async_status_log" in log


def test_with_persistence_on_the_tasks_of_a_run_read_the_settings_once(emu: Any) -> None:
    run = _run("fgs_async_persistence_on", "noop", task_ids=("first", "second"))
    assert states(run) == {"first": "success", "second": "success"}
    assert emu.request_count("async_config") == 1  # dag.test() runs every task in this process
    assert emu.invocation_count("noop") == 2
