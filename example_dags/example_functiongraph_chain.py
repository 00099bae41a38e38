"""
A pipeline of two FunctionGraph functions: ``split_words`` then ``count_words``.

The second function's payload is templated from the first one's XCom result (``tojson`` keeps it
JSON), so data flows from function to function through Airflow. Run it with another text:
``dag.test(run_conf={"text": "..."})`` or "Trigger DAG w/ config" in the UI.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

with DAG(
    dag_id="functiongraph_chain",
    schedule=None,
    tags=["example", "functiongraph"],
    params={"text": "The quick brown fox jumps over the lazy dog, and the dog sleeps on."},
    doc_md=__doc__,
) as dag:
    split_words = InvokeFunctionOperator(
        task_id="split_words",
        function_name="split_words",
        payload={"text": "{{ params.text }}"},
    )
    count_words = InvokeFunctionOperator(
        task_id="count_words",
        function_name="count_words",
        payload="{{ ti.xcom_pull(task_ids='split_words') | tojson }}",
    )
    split_words >> count_words
