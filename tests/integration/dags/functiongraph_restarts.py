"""DAGs of the triggerer-restart integration tests: one deferred invocation that counts its own runs."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

PAYLOAD = {"count_file": "{{ dag_run.conf['count_file'] }}", "seconds": "{{ dag_run.conf['seconds'] }}"}

with DAG(
    dag_id="functiongraph_deferred_restart",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
):
    InvokeFunctionOperator(task_id="invoke", function_name="counted_sleep", payload=PAYLOAD, deferrable=True)

with DAG(
    dag_id="functiongraph_async_deferred_wait",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
):
    InvokeFunctionAsyncOperator(
        task_id="start_and_wait",
        function_name="counted_sleep",
        payload=PAYLOAD,
        wait_for_completion=True,
        deferrable=True,
        poll_interval=1,
        max_poll_interval=2,
    )

with DAG(
    dag_id="functiongraph_deferred_fan_out",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
):
    InvokeFunctionOperator.partial(task_id="invoke", function_name="counted_sleep", deferrable=True).expand(
        payload=[
            {"count_file": "{{ dag_run.conf['count_file'] }}", "seconds": 0, "index": index}
            for index in range(20)
        ]
    )
