"""
A FunctionGraph function that fails: ``divide`` by zero.

The task fails with ``FunctionError`` naming the error type, message, request id and error code, and
the task log shows the function's own log lines (written before the error is raised), so the
failure can be diagnosed from Airflow alone.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

with DAG(
    dag_id="functiongraph_failing",
    schedule=None,
    tags=["example", "functiongraph"],
    doc_md=__doc__,
) as dag:
    InvokeFunctionOperator(
        task_id="divide_by_zero",
        function_name="divide",
        payload={"numerator": 1, "denominator": 0},
        retries=0,
    )
