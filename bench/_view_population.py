"""
Fill an Airflow metadata database as a large deployment's would be, for ``bench_view.py``: DAGs that call
FunctionGraph and a month of their task instances with the XComs the provider pushes.

Each DAG has four FunctionGraph tasks (``invoke``; ``invoke_mapped``, mapped over two payloads;
``invoke_deferred``, deferrable; ``batch``) and two plain ones. The DAGs are written as the DAG processor
writes them (a ``DagBag`` synced to the database); the runs, task instances and XComs through Airflow's
models (bulk ``INSERT`` of their tables), spread over the last 30 days: mostly successes, some function
errors, platform errors and outcomes unknown, as the operator records them.

Run by ``bench_view.py`` in the deployment's environment (``AIRFLOW_HOME``, the database URL):
``python bench/_view_population.py DAGS RUNS_PER_DAG``.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum

FUNCTIONS = 40
"""How many distinct functions the DAGs call (DAG ``i`` calls ``fn_{i % FUNCTIONS}``)."""
INVOKING = ("invoke", "invoke_mapped", "invoke_deferred")
OUTCOME_WEIGHTS = {"success": 960, "function_error": 20, "platform_error": 15, "outcome_unknown": 5}
ERROR_TYPES = {
    "function_error": "FunctionError",
    "platform_error": "ThrottledError",
    "outcome_unknown": "InvocationOutcomeUnknownError",
}
CHUNK = 20_000


def dags(count: int) -> list[Any]:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    from airflow_provider_fgs.operators.batch import InvokeFunctionBatchOperator
    from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
    from airflow_provider_fgs.protocol.invocation import Invocation

    made = []
    for index in range(count):
        function = f"fn_{index % FUNCTIONS}"
        with DAG(
            dag_id=f"bench_view_{index:05d}",
            schedule="@daily",
            start_date=pendulum.datetime(2026, 1, 1),
            catchup=False,
        ) as dag:
            prepare = EmptyOperator(task_id="prepare")
            invoke = InvokeFunctionOperator(task_id="invoke", function_name=function, payload={"n": index})
            mapped = InvokeFunctionOperator.partial(task_id="invoke_mapped", function_name=function).expand(
                payload=[{"part": 0}, {"part": 1}]
            )
            deferred = InvokeFunctionOperator(
                task_id="invoke_deferred", function_name=function, payload={"n": index}, deferrable=True
            )
            batch = InvokeFunctionBatchOperator(
                task_id="batch", invocation=Invocation(function_name=function), payloads=[{"n": index}]
            )
            report = EmptyOperator(task_id="report")
            prepare >> [invoke, mapped, deferred, batch] >> report
        made.append(dag)
    return made


def store(made: list[Any]) -> None:
    """Write the DAGs as the DAG processor does (the bundle, then the bag's DAGs)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    from airflow_provider_fgs.compat import AIRFLOW_V_3_2_PLUS, dag_bag

    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import sync_bag_to_db
    else:
        from airflow.models.dagbag import sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = dag_bag("/dev/null")
    for dag in made:
        bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def history(dag_ids: list[str], runs_per_dag: int) -> tuple[int, int]:
    """Runs, task instances and XComs over the last 30 days; returns (task instances, XComs)."""
    from airflow.models.dag_version import DagVersion
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import insert, select

    rng = random.Random(7)
    now = datetime.now(UTC)
    span = timedelta(days=30).total_seconds()
    total_runs = len(dag_ids) * runs_per_dag
    runs = []
    for k in range(runs_per_dag):
        for i, dag_id in enumerate(dag_ids):
            started = now - timedelta(seconds=span * (1 - (k * len(dag_ids) + i + 0.5) / total_runs))
            runs.append((dag_id, f"scheduled__{started:%Y-%m-%dT%H:%M:%S.%f}", started))
    with create_session() as session:
        versions = dict(session.execute(select(DagVersion.dag_id, DagVersion.id)).all())
        for start in range(0, len(runs), CHUNK):
            session.execute(
                insert(DagRun),
                [
                    {
                        "dag_id": dag_id,
                        "run_id": run_id,
                        "run_type": "scheduled",
                        "state": "success",
                        "logical_date": started,
                        "run_after": started,
                        "start_date": started,
                        "end_date": started + timedelta(minutes=2),
                        "created_dag_version_id": versions[dag_id],
                    }
                    for dag_id, run_id, started in runs[start : start + CHUNK]
                ],
            )
        run_ids = {
            (dag_id, run_id): run_pk
            for dag_id, run_id, run_pk in session.execute(select(DagRun.dag_id, DagRun.run_id, DagRun.id))
        }
    weights = list(OUTCOME_WEIGHTS.values())
    outcomes = list(OUTCOME_WEIGHTS)
    task_instances: list[dict[str, Any]] = []
    xcoms: list[dict[str, Any]] = []
    counted = [0, 0]

    def flush() -> None:
        with create_session() as session:
            if task_instances:
                session.execute(insert(TaskInstance), task_instances)
            if xcoms:
                session.execute(insert(XComModel), xcoms)
        counted[0] += len(task_instances)
        counted[1] += len(xcoms)
        task_instances.clear()
        xcoms.clear()

    for dag_id, run_id, started in runs:
        run_pk = run_ids[(dag_id, run_id)]
        base = {"dag_id": dag_id, "run_id": run_id, "dag_version_id": versions[dag_id], "try_number": 1}
        base |= {"pool": "default_pool", "pool_slots": 1, "queue": "default", "priority_weight": 1}
        for task_id in ("prepare", "report"):
            task_instances.append(
                {
                    **base,
                    "task_id": task_id,
                    "map_index": -1,
                    "operator": "EmptyOperator",
                    "state": "success",
                    "start_date": started,
                    "end_date": started,
                    "duration": 0.0,
                }
            )
        for task_id, map_index in (
            ("invoke", -1),
            ("invoke_mapped", 0),
            ("invoke_mapped", 1),
            ("invoke_deferred", -1),
            ("batch", -1),
        ):
            outcome = rng.choices(outcomes, weights)[0] if task_id != "batch" else "success"
            duration_ms = round(rng.lognormvariate(4.5, 0.8), 3)  # the function's own: ~90 ms median
            task_start = started + timedelta(seconds=rng.uniform(1, 30))
            task_seconds = duration_ms / 1000 + rng.uniform(0.2, 1.5)
            operator = "InvokeFunctionBatchOperator" if task_id == "batch" else "InvokeFunctionOperator"
            task_instances.append(
                {
                    **base,
                    "task_id": task_id,
                    "map_index": map_index,
                    "operator": operator,
                    "custom_operator_name": operator,
                    "state": "success" if outcome == "success" else "failed",
                    "start_date": task_start,
                    "end_date": task_start + timedelta(seconds=task_seconds),
                    "duration": task_seconds,
                }
            )
            key = {
                "dag_run_id": run_pk,
                "dag_id": dag_id,
                "run_id": run_id,
                "task_id": task_id,
                "map_index": map_index,
                "timestamp": task_start,
            }
            if task_id == "batch":
                xcoms.append(
                    {**key, "key": "summary", "value": {"status": "success", "items": 1, "success": 1}}
                )
                continue
            if outcome in ("success", "function_error"):
                summary = {
                    "duration": duration_ms,
                    "billingDuration": int(duration_ms) + 1,
                    "memorySize": 256,
                    "memoryUsed": 40.0,
                }
                xcoms.append({**key, "key": "summary", "value": summary})
                xcoms.append({**key, "key": "billing_duration_ms", "value": summary["billingDuration"]})
                xcoms.append({**key, "key": "request_id", "value": f"{run_pk:08x}-{task_id}-{map_index}"})
            if outcome == "function_error":
                xcoms.append({**key, "key": "error_code", "value": "1"})
            if outcome != "success":
                xcoms.append({**key, "key": "error_type", "value": ERROR_TYPES[outcome]})
        if len(task_instances) >= CHUNK:
            flush()
    flush()
    return counted[0], counted[1]


def main() -> None:
    count, runs_per_dag = int(sys.argv[1]), int(sys.argv[2])
    began = time.perf_counter()
    made = dags(count)
    store(made)
    stored = time.perf_counter()
    task_instances, xcoms = history([dag.dag_id for dag in made], runs_per_dag)
    print(
        f"{count} DAGs stored in {stored - began:.0f} s; {count * runs_per_dag} runs, {task_instances} task "
        f"instances and {xcoms} XComs in {time.perf_counter() - stored:.0f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
