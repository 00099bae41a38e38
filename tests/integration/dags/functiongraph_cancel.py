"""
Integration DAG: two async invocations of a long function, one waited for in the worker, one in the
triggerer. The test marks both tasks failed through the REST API; each invocation must end DISCARD.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator

with DAG(dag_id="functiongraph_cancel", schedule=None, tags=["functiongraph", "integration"]) as dag:
    # One function per task: a "force" cancel stops all running async invocations of its function.
    for task_id, function, deferrable in (
        ("wait_in_worker", "long_job", False),
        ("wait_in_triggerer", "long_wait", True),
    ):
        InvokeFunctionAsyncOperator(
            task_id=task_id,
            function_name=function,
            payload={"seconds": 300},
            wait_for_completion=True,
            poll_interval=1,
            max_poll_interval=2,
            deferrable=deferrable,
        )
