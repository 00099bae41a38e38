"""
Integration DAGs. ``functiongraph_cancel``: two async invocations of a long function, one waited for in
the worker, one in the triggerer; the test marks both tasks failed through the REST API and each
invocation must end DISCARD. ``functiongraph_deferral_timeout``: a deferred wait whose
``execution_timeout`` passes; its invocation must end DISCARD too.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator

with DAG(dag_id="functiongraph_cancel", schedule=None, tags=["functiongraph", "integration"]) as dag:
    # A function per task: the runs of one never show among the records of the other.
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

with DAG(dag_id="functiongraph_deferral_timeout", schedule=None, tags=["functiongraph", "integration"]):
    InvokeFunctionAsyncOperator(
        task_id="wait_too_long",
        function_name="long_wait",
        payload={"seconds": 300},
        wait_for_completion=True,
        poll_interval=1,
        max_poll_interval=2,
        deferrable=True,
        # Long enough that the scheduler has handled the deferral before the timeout resumes the task: a
        # resume queued first is failed by Airflow's race (apache/airflow#67287), and the resume is what
        # cancels (CI saw it at 5 s on a loaded machine, the deferral handled 5.5 s late).
        execution_timeout=timedelta(seconds=15),
    )
