"""A connection with no stored secret through Airflow's real ``dag.test()``: a task on the worker path, a
deferred invocation and a deferred batch (their triggers run in the test's event loop) all sign with the
temporary credentials of CCE pod identity, served by the emulator."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.emulator.credentials_api import POD_IDENTITY_PATH
from tests.conftest import clear_host_cache
from tests.credential_sources import jwt, token_file
from tests.dags.dagrun import states, xcoms

CONN_ID = "functiongraph_no_secret"
DAG_FILE = Path(__file__).resolve().parents[1] / "integration" / "dags" / "functiongraph_credentials.py"


@pytest.fixture
def pod(
    fresh_emulator: FunctionGraphEmulator, clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> FunctionGraphEmulator:
    """This host as a CCE pod with an identity, and a connection holding no secret."""
    clean_environment.setenv("HC_CONTAINER_CREDENTIALS_FULL_URI", f"{fresh_emulator.url}{POD_IDENTITY_PATH}")
    clean_environment.setenv("HC_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file(tmp_path, jwt()))
    extra = {
        "region": fresh_emulator.region,
        "project_id": fresh_emulator.project_id,
        "endpoint": fresh_emulator.url,
        "metadata_endpoint": "http://127.0.0.1:9",  # no ECS metadata service on this host
    }
    connection = json.dumps({"conn_type": "functiongraph", "extra": extra})
    clean_environment.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection)
    clear_host_cache()
    return fresh_emulator


def credential_chain_dag() -> Any:
    """The integration tests' DAG (``tests/integration/dags/functiongraph_credentials.py``), stored."""
    from airflow_provider_fgs.compat import store_dag

    spec = importlib.util.spec_from_file_location("functiongraph_credentials", DAG_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    store_dag(module.dag)
    return module.dag


def test_the_worker_and_the_triggers_sign_with_the_pods_credentials(
    pod: FunctionGraphEmulator, airflow_db: Path
) -> None:
    run = credential_chain_dag().test()

    assert states(run) == {"on_worker": "success", "deferred": "success", "batch": "success"}
    pushed = xcoms(run)
    assert pushed["on_worker"]["return_value"]["event"] == {"where": "worker"}
    assert pushed["deferred"]["return_value"]["event"] == {"where": "triggerer"}
    assert [item["event"] for item in pushed["batch"]["return_value"]] == [{"item": i} for i in range(5)]
    assert pod.credentials_issued("pod_identity") == 1
    assert pod.invocation_count("echo") == 7
