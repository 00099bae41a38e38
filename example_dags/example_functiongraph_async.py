"""
Asynchronous invocations (``invocations-async``), waited for in the worker.

* ``start_and_wait`` starts an invocation and polls its status until it ends; its ``return_value`` is the
  invocation's status record, and the task fails if the invocation ends FAIL or DISCARD.
* ``start`` only starts one and pushes its request id; ``wait`` (a sensor) waits for it. Add
  ``deferrable=True`` to either to wait in the triggerer instead.

Trigger with ``{"function": "divide", "payload": {"numerator": 1, "denominator": 0}}`` to see a failure.
On FunctionGraph, enable async status persistence on the functions (off by default): without it there
are no status records to wait for (the emulator's ``<name>.json`` turns it on).
"""

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from airflow_provider_fgs.sensors.functiongraph import FunctionGraphAsyncInvocationSensor

with DAG(
    dag_id="functiongraph_async",
    schedule=None,
    tags=["example", "functiongraph"],
    doc_md=__doc__,
    params={
        "function": Param("count_words", type="string"),
        "payload": Param(
            {"words": ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]}, type="object"
        ),
    },
    render_template_as_native_obj=True,
) as dag:
    InvokeFunctionAsyncOperator(
        task_id="start_and_wait",
        function_name="{{ params.function }}",
        payload="{{ params.payload }}",
        wait_for_completion=True,
        poll_interval=1,
    )
    start = InvokeFunctionAsyncOperator(
        task_id="start", function_name="{{ params.function }}", payload="{{ params.payload }}"
    )
    wait = FunctionGraphAsyncInvocationSensor(
        task_id="wait",
        function_name="{{ params.function }}",
        request_id="{{ ti.xcom_pull(task_ids='start', key='request_id') }}",
        query_begin_time="{{ ti.xcom_pull(task_ids='start', key='query_begin_time') }}",
        poke_interval=1,
        timeout=600,
    )
    start >> wait
