"""
Integration DAG ``functiongraph_metrics``: one invocation that succeeds, sent from a worker, and one whose
function fails, sent from the triggerer; two asynchronous invocations waited for on workers, one by the
task that starts it, one by a sensor. The test reads the provider's metrics from the StatsD server the
deployment sends to.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.sensors.functiongraph import FunctionGraphAsyncInvocationSensor

with DAG(dag_id="functiongraph_metrics", schedule=None, tags=["functiongraph", "integration"]):
    # Functions no other integration DAG invokes: their metrics are this run's.
    InvokeFunctionOperator(task_id="succeed", function_name="noop", deferrable=False)
    InvokeFunctionOperator(
        task_id="fail",
        function_name="fail",
        payload={"value": "metrics"},
        deferrable=True,
        retries=0,
    )
    InvokeFunctionAsyncOperator(
        task_id="start_and_wait", function_name="environ", wait_for_completion=True, poll_interval=1
    )
    start = InvokeFunctionAsyncOperator(task_id="start", function_name="memory")
    start >> FunctionGraphAsyncInvocationSensor(
        task_id="wait",
        function_name="memory",
        request_id="{{ ti.xcom_pull(task_ids='start', key='request_id') }}",
        query_begin_time="{{ ti.xcom_pull(task_ids='start', key='query_begin_time') }}",
        poke_interval=1,
    )
