"""
One IAM token per host, and a rejected credential reaches the platform once, in a real deployment.

They run on both deployment shapes: the local one (LocalExecutor), and the production one, where the
task processes are spread over two Celery workers on the same host. The emulator counts token requests
and rejected credentials (``/_emulator/stats``) and applies the platform's lockout rules (``--lockout``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from airflow_provider_fgs.emulator.app import STATS_PATH
from airflow_provider_fgs.emulator.defaults import DEFAULT_ACCESS_KEYS, DEFAULT_USERS

from .conftest import INTEGRATION_TIMEOUT, RUN_TIMEOUT, SHAPES, Deployment

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(INTEGRATION_TIMEOUT),
    pytest.mark.parametrize("deployment", SHAPES, indirect=True),
]

FAN_OUT_DAG = "functiongraph_fan_out"
FAN_OUT_CONN = "functiongraph_fan_out"


def emulator_stats(deployment: Deployment) -> dict[str, Any]:
    response = requests.get(f"{deployment.emulator.url}{STATS_PATH}", timeout=10)
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


def _count(stats: dict[str, Any], group: str, name: str) -> int:
    return int(stats[group].get(name, 0))


def fan_out_connection(deployment: Deployment, mode: str, secret: str | None = None) -> dict[str, Any]:
    """``functiongraph_fan_out`` with IAM password or AK/SK auth (``secret`` replaces the right one)."""
    body = deployment.connection_body(FAN_OUT_CONN)
    extra = json.loads(body["extra"])
    if mode == "password":
        domain, users = next(iter(DEFAULT_USERS.items()))
        user, password = next(iter(users.items()))
        extra["domain_name"] = domain
        body.update(login=user, password=secret or password)
    else:
        access_key, secret_key = next(iter(DEFAULT_ACCESS_KEYS.items()))
        body.update(login=access_key, password=secret or secret_key)
    body["extra"] = json.dumps(extra)
    return body


def run_fan_out(deployment: Deployment, count: int) -> tuple[str, list[dict[str, Any]]]:
    """Trigger the fan-out DAG with ``count`` mapped tasks; its final state and mapped task instances."""
    api = deployment.api
    run_id = api.start_run(FAN_OUT_DAG, conf={"count": count})
    state = api.wait_for_run(FAN_OUT_DAG, run_id, timeout=RUN_TIMEOUT + 8 * count)
    mapped = [ti for ti in api.task_instances(FAN_OUT_DAG, run_id) if ti["task_id"] == "square"]
    return state, mapped


def test_twenty_task_processes_on_password_auth_make_at_most_one_token_request(
    deployment: Deployment,
) -> None:
    deployment.api.create_connection(fan_out_connection(deployment, "password"))
    before = emulator_stats(deployment)

    state, mapped = run_fan_out(deployment, 20)

    after = emulator_stats(deployment)
    assert state == "success", deployment.logs()
    assert len(mapped) == 20
    assert all(ti["state"] == "success" for ti in mapped)
    tokens = _count(after, "requests", "token") - _count(before, "requests", "token")
    invocations = _count(after, "invocations", "square") - _count(before, "invocations", "square")
    print(f"task processes: 20, IAM token requests: {tokens}")
    assert invocations == 20
    assert tokens <= 1


def test_a_wrong_secret_key_with_retries_and_a_fan_out_of_ten_is_rejected_at_most_once(
    deployment: Deployment,
) -> None:
    wrong = "wrong-secret-key-for-the-fan-out"
    deployment.api.create_connection(fan_out_connection(deployment, "aksk", secret=wrong))
    before = emulator_stats(deployment)

    state, mapped = run_fan_out(deployment, 10)

    after = emulator_stats(deployment)
    assert state == "failed"
    assert len(mapped) == 10
    assert all(ti["state"] == "failed" for ti in mapped), [ti["state"] for ti in mapped]
    assert all(ti["try_number"] == 1 for ti in mapped), "a rejected credential must not use the retries"
    rejected = _count(after, "rejections", "signature") - _count(before, "rejections", "signature")
    assert rejected <= 1
    assert after["locks"] == before["locks"], "the provider got the access key locked"
    log = deployment.api.task_log(FAN_OUT_DAG, mapped[-1]["dag_run_id"], "square", map_index=9)
    assert "AuthenticationError" in log or "CredentialCoolDownError" in log
    assert wrong not in log
