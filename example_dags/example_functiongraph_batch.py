"""
Call one function for many items in ONE task: ``params.count`` numbers (default 500) squared by
``InvokeFunctionBatchOperator``, 50 invocations in flight, in the triggerer.

A mapped task per item costs about a second of Airflow's CPU each and is capped at 1024 items by
``[core] max_map_length``; a batch costs milliseconds per item and has no such cap. Each item is invoked
at most once, across triggerer restarts and task retries (the ledger is an Airflow Variable until the
batch succeeds). ``report`` reads the batch's ``summary`` and ``failures`` from XCom.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_fgs.operators.batch import InvokeFunctionBatchOperator
from airflow_provider_fgs.protocol.invocation import Invocation

with DAG(
    dag_id="functiongraph_batch",
    schedule=None,
    params={"count": Param(500, type="integer", minimum=1)},
    tags=["example", "functiongraph"],
    doc_md=__doc__,
) as dag:

    @task
    def numbers(params: dict[str, Any] | None = None) -> list[dict[str, int]]:
        return [{"x": x} for x in range(1, int((params or {})["count"]) + 1)]

    squares = InvokeFunctionBatchOperator(
        task_id="square_all",
        invocation=Invocation(function_name="square", log_type=None),  # no per-item log tails
        payloads=numbers(),
        max_concurrency=50,
        deferrable=True,
    )

    @task
    def report(ti: Any = None) -> dict[str, Any]:
        summary = ti.xcom_pull(task_ids="square_all", key="summary")
        squares = ti.xcom_pull(task_ids="square_all")
        return {"succeeded": summary["success"], "sum_of_squares": sum(item["square"] for item in squares)}

    report().set_upstream(squares)
