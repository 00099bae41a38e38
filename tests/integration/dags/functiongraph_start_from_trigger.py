"""
DAGs whose invocations the scheduler starts in the triggerer (``start_from_trigger``, Airflow 3.3): no
worker process runs for them unless they resume on one. Before 3.3 they start on a worker, which says why.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

STARTED = {"deferrable": True, "start_from_trigger": True}
COUNTED = {"count_file": "{{ dag_run.conf['count_file'] }}", "seconds": "{{ dag_run.conf['seconds'] }}"}

with DAG(
    dag_id="functiongraph_start_from_trigger",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    params={"who": "Ada"},
    user_defined_macros={"shout": str.upper},
):

    @task
    def numbers() -> list[dict[str, int]]:
        return [{"x": 2}, {"x": 3}]

    @task
    def total(results: list[dict[str, Any]]) -> int:
        return sum(result["square"] for result in results)

    greet = InvokeFunctionOperator(
        task_id="greet", function_name="hello", payload={"name": "{{ params.who }}"}, **STARTED
    )
    squares = InvokeFunctionOperator.partial(task_id="squares", function_name="square", **STARTED).expand(
        payload=numbers()
    )
    total(squares.output)
    InvokeFunctionOperator(task_id="chained", function_name="echo", payload=greet.output, **STARTED)
    # A DAG's macros exist only where its file is parsed: this one starts on a worker, which renders it.
    InvokeFunctionOperator(
        task_id="shouted", function_name="hello", payload={"name": "{{ shout(params.who) }}"}, **STARTED
    )

with DAG(
    dag_id="functiongraph_started_fan_out",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
):
    InvokeFunctionOperator.partial(task_id="invoke", function_name="counted_sleep", **STARTED).expand(
        payload=[
            {"count_file": "{{ dag_run.conf['count_file'] }}", "seconds": 0, "index": index}
            for index in range(20)
        ]
    )

with DAG(
    dag_id="functiongraph_started_restart",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
):
    InvokeFunctionOperator(task_id="invoke", function_name="counted_sleep", payload=COUNTED, **STARTED)

with DAG(
    dag_id="functiongraph_batch_start_from_trigger",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    params={"function": "batch_item"},
):
    from airflow_provider_fgs.operators.batch import InvokeFunctionBatchOperator
    from airflow_provider_fgs.protocol.invocation import Invocation

    @task
    def items(dag_run: Any = None) -> list[dict[str, Any]]:
        return [{"index": index, "count_file": dag_run.conf["count_file"]} for index in range(30)]

    # The function's name a template, the payloads an upstream task's result: both rendered and pulled
    # in the triggerer (the payloads are not rendered again, as on a worker).
    InvokeFunctionBatchOperator(
        task_id="batch",
        invocation=Invocation(function_name="{{ params.function }}", log_type=None),
        payloads=items(),
        max_concurrency=10,
        **STARTED,
    )
