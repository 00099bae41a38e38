"""
Integration DAG ``functiongraph_metrics``: one invocation that succeeds, sent from a worker, and one whose
function fails, sent from the triggerer; the test reads the provider's metrics from the StatsD server
the deployment sends to.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

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
