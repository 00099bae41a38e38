"""DAGs of the batch integration tests: a batch that counts its own runs, deferred and on a worker."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_fgs.operators.batch import InvokeFunctionBatchOperator
from airflow_provider_fgs.protocol.invocation import Invocation

for dag_id, deferrable in (("functiongraph_batch_deferred", True), ("functiongraph_batch_on_worker", False)):
    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
        InvokeFunctionBatchOperator(
            task_id="batch",
            invocation=Invocation(function_name="batch_item", log_type=None),
            payloads=[
                {"index": index, "count_file": "{{ dag_run.conf['count_file'] }}"} for index in range(60)
            ],
            max_concurrency=10,
            deferrable=deferrable,
        )
