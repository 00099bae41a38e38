"""A connection with no stored secret, used on a worker, in the triggerer (a deferred invocation) and by a
deferred batch: run by the credential chain's deployment test, and by its ``dag.test()`` twin
(``tests/dags/test_credential_chain_dag.py``)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_fgs.operators.batch import InvokeFunctionBatchOperator
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.protocol.invocation import Invocation

CONN_ID = "functiongraph_no_secret"

with DAG(
    dag_id="functiongraph_credential_chain",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
) as dag:
    on_worker = InvokeFunctionOperator(
        task_id="on_worker", function_name="echo", payload={"where": "worker"}, functiongraph_conn_id=CONN_ID
    )
    deferred = InvokeFunctionOperator(
        task_id="deferred",
        function_name="echo",
        payload={"where": "triggerer"},
        functiongraph_conn_id=CONN_ID,
        deferrable=True,
    )
    batch = InvokeFunctionBatchOperator(
        task_id="batch",
        invocation=Invocation(function_name="echo", log_type=None),
        payloads=[{"item": index} for index in range(5)],
        functiongraph_conn_id=CONN_ID,
        deferrable=True,
    )
    on_worker >> [deferred, batch]
