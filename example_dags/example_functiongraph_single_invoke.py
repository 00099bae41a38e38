"""
Invoke one FunctionGraph function and keep its result in XCom.

The function is named, not given as a URN: the connection ``functiongraph_default`` supplies the region
and project, so the DAG runs unchanged against the local emulator or real FunctionGraph.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

with DAG(
    dag_id="functiongraph_single_invoke",
    schedule=None,
    tags=["example", "functiongraph"],
    params={"name": "Airflow"},
    doc_md=__doc__,
) as dag:
    InvokeFunctionOperator(
        task_id="invoke_hello",
        functiongraph_conn_id="functiongraph_default",
        function_name="hello",
        payload={"name": "{{ params.name }}", "run_id": "{{ run_id }}"},
    )
