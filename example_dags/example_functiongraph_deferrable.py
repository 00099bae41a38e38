"""
Invocations that wait in the triggerer instead of holding a worker slot.

* ``square`` fans one function out over a list with ``deferrable=True`` and ``start_from_trigger=True``: on
  Airflow 3.3 the scheduler hands each mapped task straight to the triggerer (no worker process), whose
  event loop makes the HTTP calls concurrently; on 3.1 and 3.2 each task starts on a worker and defers.
* ``start_count`` starts an asynchronous invocation (``invocations-async``) and pushes its request id;
  ``wait_count`` waits for it in the triggerer, polling its status with growing intervals.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.sensors.functiongraph import FunctionGraphAsyncInvocationSensor

with DAG(
    dag_id="functiongraph_deferrable",
    schedule=None,
    tags=["example", "functiongraph"],
    doc_md=__doc__,
) as dag:
    squares = InvokeFunctionOperator.partial(
        task_id="square", function_name="square", deferrable=True, start_from_trigger=True
    ).expand(payload=[{"x": x} for x in range(1, 4)])

    @task
    def total(results: list[dict[str, Any]]) -> int:
        return sum(result["square"] for result in results)

    start_count = InvokeFunctionAsyncOperator(
        task_id="start_count",
        function_name="count_words",
        payload={"words": ["a", "rose", "is", "a", "rose", "is", "a", "rose"]},
    )
    wait_count = FunctionGraphAsyncInvocationSensor(
        task_id="wait_count",
        function_name="count_words",
        request_id="{{ ti.xcom_pull(task_ids='start_count', key='request_id') }}",
        poke_interval=1,
        timeout=600,
        deferrable=True,
    )

    total(squares.output)
    start_count >> wait_count
