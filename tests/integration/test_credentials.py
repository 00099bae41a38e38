"""
A connection with no stored secret in a real deployment: the hosts are CCE pods with an identity (the
emulator's stand-in, ``conftest._pod_identity_env``), and no other source of the Huawei SDK's chain is
there but an ECS metadata endpoint that does not answer. A task on a worker, a deferred invocation in the
triggerer and a deferred batch all sign with the pod's temporary credentials, fetched once for the host
(the emulator counts what it issued); the task log says where they came from.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from airflow_provider_fgs.emulator.app import STATS_PATH

from .conftest import INTEGRATION_TIMEOUT, RUN_TIMEOUT, SHAPES, Deployment

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(INTEGRATION_TIMEOUT),
    pytest.mark.parametrize("deployment", SHAPES, indirect=True),
]

DAG_ID = "functiongraph_credential_chain"
CONN_ID = "functiongraph_no_secret"
CLOSED_PORT = "http://127.0.0.1:9"  # no ECS metadata service here: the chain passes it over at once


def pod_credentials_issued(deployment: Deployment) -> int:
    response = requests.get(f"{deployment.emulator.url}{STATS_PATH}", timeout=10)
    response.raise_for_status()
    return int(response.json()["credentials_issued"].get("pod_identity", 0))


def no_secret_connection(deployment: Deployment) -> dict[str, Any]:
    """Region, project and endpoint only, as a new user on CCE writes it (the chain finds the rest)."""
    body = deployment.connection_body(CONN_ID)
    extra = json.loads(body["extra"])
    del extra["iam_endpoint"]
    extra["metadata_endpoint"] = CLOSED_PORT
    return {**body, "login": None, "password": None, "extra": json.dumps(extra)}


def test_a_connection_without_secrets_uses_the_pods_identity_on_workers_and_in_the_triggerer(
    deployment: Deployment,
) -> None:
    api = deployment.api
    api.create_connection(no_secret_connection(deployment))
    before = pod_credentials_issued(deployment)

    run_id = api.start_run(DAG_ID)
    state = api.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)

    states = {ti["task_id"]: ti["state"] for ti in api.task_instances(DAG_ID, run_id)}
    assert state == "success", (states, deployment.logs())
    assert api.xcom(DAG_ID, run_id, "on_worker")["event"] == {"where": "worker"}
    assert api.xcom(DAG_ID, run_id, "deferred")["event"] == {"where": "triggerer"}
    assert [item["event"] for item in api.xcom(DAG_ID, run_id, "batch")] == [{"item": i} for i in range(5)]
    # The worker's task process fetched them; the triggerer (and on the production shape the other
    # worker) read them from the host's cache.
    assert pod_credentials_issued(deployment) - before == 1

    worker_log = json.dumps(api.task_log_events(DAG_ID, run_id, "on_worker"))
    assert "Fetched temporary credentials from CCE pod identity" in worker_log, worker_log
