"""
Fifty mapped invocations of one function, fanned in: the production-shaped deployment spreads the
``square`` task instances over both Celery workers.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

MAPPED_TASKS = 50

with DAG(
    dag_id="functiongraph_mapped_50",
    schedule=None,
    tags=["test", "functiongraph"],
    doc_md=__doc__,
) as dag:
    squares = InvokeFunctionOperator.partial(task_id="square", function_name="square").expand(
        payload=[{"x": x} for x in range(1, MAPPED_TASKS + 1)]
    )

    @task
    def total(results: list[dict[str, Any]]) -> int:
        return sum(result["square"] for result in results)

    total(squares.output)
