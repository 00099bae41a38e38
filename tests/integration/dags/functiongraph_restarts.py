"""DAGs of the triggerer-restart integration tests: deferred invocations, and a batch, that count their own
runs."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from airflow_provider_fgs.operators.batch import InvokeFunctionBatchOperator
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.protocol.invocation import Invocation

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

BATCH_ITEMS = 300
BATCH_CONCURRENCY = 20

with DAG(
    dag_id="functiongraph_batch_restart",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
):
    InvokeFunctionBatchOperator(
        task_id="batch",
        invocation=Invocation(function_name="batch_item", log_type=None),
        payloads=[
            {"index": index, "count_file": "{{ dag_run.conf['count_file'] }}", "seconds": 0.5}
            for index in range(BATCH_ITEMS)
        ],
        max_concurrency=BATCH_CONCURRENCY,
        # What a killed triggerer had claimed ends "outcome unknown": at most two windows of it.
        max_failed_items=2 * BATCH_CONCURRENCY,
        deferrable=True,
    )
