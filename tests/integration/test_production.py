"""The production-shaped deployment: PostgreSQL, CeleryExecutor with Redis, two workers, two triggerers.

The chain and deferrable DAGs run here too (test_api.py runs on both shapes); this module checks what
only this shape has: a 50-task mapped DAG spread over both Celery workers, the async-invocation DAG,
the shape itself (both workers and both triggerers up, the metadata database on PostgreSQL), and a
worker restarted. Its runs are triggered together once, by this module, and awaited here, so tests of
other modules that stop components never interrupt them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import (
    CHAIN_DAG,
    CHAIN_TEXT,
    INTEGRATION_TIMEOUT,
    PRODUCTION_SHAPE,
    Deployment,
)
from .processes import wait_for
from .production import TRIGGERERS, WORKERS, CeleryDeployment

MAPPED_50_DAG = "functiongraph_mapped_50"
ASYNC_DAG = "functiongraph_async"
MAPPED_TASKS = 50
# 50 tasks on 2 x 2 worker slots of a 2-core machine: a minute or so; generous for a loaded one.
RUN_TIMEOUT = 300.0
# Start-up here also pays for PostgreSQL, Redis and two more Airflow components.
PRODUCTION_TIMEOUT = INTEGRATION_TIMEOUT + 180

pytestmark = [
    pytest.mark.integration,
    pytest.mark.production,
    pytest.mark.timeout(PRODUCTION_TIMEOUT),
    pytest.mark.parametrize("deployment", [PRODUCTION_SHAPE], indirect=True),
]


@dataclass
class ProductionRuns:
    """The runs this module triggers together: they share the two workers."""

    mapped_50: str
    async_invocation: str


@pytest.fixture(scope="module")
def production_runs(deployment: Deployment, functiongraph_connection: dict[str, Any]) -> ProductionRuns:
    api = deployment.api
    for dag_id in (MAPPED_50_DAG, ASYNC_DAG):
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)
    return ProductionRuns(mapped_50=api.trigger(MAPPED_50_DAG), async_invocation=api.trigger(ASYNC_DAG))


def _celery(deployment: Deployment) -> CeleryDeployment:
    assert isinstance(deployment.airflow, CeleryDeployment), deployment.airflow
    return deployment.airflow


def _wait_success(deployment: Deployment, dag_id: str, run_id: str) -> None:
    api = deployment.api
    state = api.wait_for_run(dag_id, run_id, RUN_TIMEOUT)
    assert state == "success", f"{api.task_states(dag_id, run_id)}{deployment.logs()}"


def test_the_deployment_runs_on_postgresql_with_two_workers_and_two_triggerers(
    deployment: Deployment,
) -> None:
    airflow = _celery(deployment)

    health = deployment.api.session.get(f"{airflow.url}/api/v2/monitor/health", timeout=30).json()
    migrated = airflow.query("SELECT version_num FROM alembic_version")

    assert health["metadatabase"]["status"] == "healthy", health
    assert len(migrated) == 1, migrated
    assert len(airflow.triggerers) == len(TRIGGERERS)
    assert airflow.running_triggerers() is not None, airflow.logs()  # both heartbeat
    assert airflow.ready_workers() == sorted(WORKERS), airflow.logs()
    airflow.check_alive()


def test_a_50_task_mapped_dag_is_spread_over_both_workers(
    deployment: Deployment, production_runs: ProductionRuns
) -> None:
    api = deployment.api
    _wait_success(deployment, MAPPED_50_DAG, production_runs.mapped_50)

    instances = api.task_instances(MAPPED_50_DAG, production_runs.mapped_50)
    squares = [ti for ti in instances if ti["task_id"] == "square"]
    assert sorted(ti["map_index"] for ti in squares) == list(range(MAPPED_TASKS))
    assert {ti["state"] for ti in instances} == {"success"}
    assert {ti["queue"] for ti in instances} == {"default"}
    per_worker = Counter(ti["hostname"] for ti in squares)
    assert set(per_worker) == set(WORKERS), per_worker

    for map_index in range(MAPPED_TASKS):
        x = map_index + 1
        result = api.xcom(MAPPED_50_DAG, production_runs.mapped_50, "square", map_index=map_index)
        assert result == {"x": x, "square": x * x}, map_index
    expected_total = sum(x * x for x in range(1, MAPPED_TASKS + 1))
    assert api.xcom(MAPPED_50_DAG, production_runs.mapped_50, "total") == expected_total


def test_the_async_invocation_dag_returns_the_status_records(
    deployment: Deployment, production_runs: ProductionRuns
) -> None:
    api = deployment.api
    run_id = production_runs.async_invocation
    _wait_success(deployment, ASYNC_DAG, run_id)

    waited: dict[str, Any] = api.xcom(ASYNC_DAG, run_id, "start_and_wait")
    waited_request = api.xcom(ASYNC_DAG, run_id, "start_and_wait", key="request_id")
    started = api.xcom(ASYNC_DAG, run_id, "start")
    started_request = api.xcom(ASYNC_DAG, run_id, "start", key="request_id")
    sensed: dict[str, Any] = api.xcom(ASYNC_DAG, run_id, "wait")

    assert waited["status"] == "SUCCESS", waited
    assert waited["request_id"] == waited_request
    assert started == started_request
    assert sensed["request_id"] == started_request
    assert sensed["status"] == "SUCCESS", sensed
    assert waited_request != started_request


def test_a_worker_started_again_rejoins_and_runs_tasks(
    deployment: Deployment, functiongraph_connection: dict[str, Any]
) -> None:
    """A rolling restart of one worker: it stops (SIGTERM), starts again, answers, and runs tasks."""
    airflow = _celery(deployment)
    api = deployment.api

    api.wait_for_dag(CHAIN_DAG)
    api.unpause(CHAIN_DAG)  # whether or not test_api.py ran first
    airflow.process("worker-b").stop()
    restarted = airflow.start_again("worker-b")
    wait_for("worker-b to answer a ping again", airflow.ready_workers, 90, airflow.watched())
    run_id = api.trigger(CHAIN_DAG, conf={"text": CHAIN_TEXT})
    _wait_success(deployment, CHAIN_DAG, run_id)

    assert restarted.exit_code() is None
    assert airflow.process("worker-b") is restarted
    assert api.xcom(CHAIN_DAG, run_id, "count_words")["total"] == len(
        re.findall(r"[a-z]+", CHAIN_TEXT.lower())
    )
    airflow.check_alive()
