"""
Fan one function out wide: ``params.count`` mapped invocations (default 20), each task with retries.

Every mapped task runs in its own process. With IAM password auth they share one token per host
(the provider's host cache): N tasks make one token request, not N. A credential that IAM or the API
gateway rejects fails every task at once (no Airflow retries, no request from the other tasks during
the cool-down), so a bad key cannot get itself locked by the fan-out.

Uses the connection ``functiongraph_fan_out``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

with DAG(
    dag_id="functiongraph_fan_out",
    schedule=None,
    params={"count": Param(20, type="integer", minimum=1)},
    default_args={"retries": 3, "retry_delay": timedelta(seconds=5)},
    tags=["example", "functiongraph"],
    doc_md=__doc__,
) as dag:

    @task
    def inputs(params: dict[str, Any] | None = None) -> list[dict[str, int]]:
        count = int((params or {})["count"])
        return [{"x": x} for x in range(1, count + 1)]

    InvokeFunctionOperator.partial(
        task_id="square", function_name="square", functiongraph_conn_id="functiongraph_fan_out"
    ).expand(payload=inputs())
