"""
Fan one FunctionGraph function out over a list with dynamic task mapping, then fan the results in.

``square`` runs once per payload, as mapped task instances ``square[0]`` ... ``square[4]``; the
``total`` task receives every result in map-index order.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

with DAG(
    dag_id="functiongraph_mapped",
    schedule=None,
    tags=["example", "functiongraph"],
    doc_md=__doc__,
) as dag:
    squares = InvokeFunctionOperator.partial(task_id="square", function_name="square").expand(
        payload=[{"x": x} for x in range(1, 6)]
    )

    @task
    def total(results: list[dict[str, Any]]) -> int:
        return sum(result["square"] for result in results)

    total(squares.output)
