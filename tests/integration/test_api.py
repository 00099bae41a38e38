"""The provider in a real Airflow deployment, driven through Airflow's public REST API (``/api/v2``).

The ``functiongraph`` connection is created through the API, the example DAGs are unpaused and
triggered through it, the scheduler, workers and triggerer(s) run them against the emulator, and the
results, XComs, task logs and extra links are read back through the API. Every test runs on both
deployment shapes: LocalExecutor on sqlite, and PostgreSQL with the CeleryExecutor, two workers and two
triggerers (``production``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from airflow_provider_fgs.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_fgs.links.functiongraph import function_console_url
from airflow_provider_fgs.protocol.urn import FunctionUrn

from .conftest import (
    CHAIN_DAG,
    CHAIN_TEXT,
    CONN_ID,
    DEFERRABLE_DAG,
    INTEGRATION_TIMEOUT,
    RUN_TIMEOUT,
    SHAPES,
    TASKFLOW_DAG,
    Deployment,
    Runs,
)

# The first test also waits for the deployment to start (session fixture): allow for a slow machine.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(INTEGRATION_TIMEOUT),
    pytest.mark.parametrize("deployment", SHAPES, indirect=True),
]


def _urn(deployment: Deployment, function: str) -> FunctionUrn:
    emulator = deployment.emulator
    return FunctionUrn.from_parts(region=emulator.region, project_id=emulator.project_id, name=function)


def test_connection_is_stored_without_revealing_its_secret(
    deployment: Deployment, functiongraph_connection: dict[str, Any]
) -> None:
    stored = deployment.api.get_connection(CONN_ID)

    assert stored["conn_type"] == "functiongraph"
    assert stored["login"] == functiongraph_connection["login"]
    assert json.loads(stored["extra"])["endpoint"] == deployment.emulator.url
    assert functiongraph_connection["password"] not in json.dumps(stored)


def test_connection_test_endpoint_reaches_the_emulator(deployment: Deployment) -> None:
    good = deployment.connection_body("functiongraph_probe")
    bad = {**good, "password": "not-the-secret-key-0123456789"}

    accepted = deployment.api.test_connection(good)
    refused = deployment.api.test_connection(bad)

    assert accepted["status"] is True, accepted
    assert refused["status"] is False, refused
    assert bad["password"] not in refused["message"]


def test_chain_dag_passes_results_from_function_to_function(deployment: Deployment, runs: Runs) -> None:
    api = deployment.api
    state = api.wait_for_run(CHAIN_DAG, runs.chain, RUN_TIMEOUT)
    assert state == "success", f"{api.task_states(CHAIN_DAG, runs.chain)}{deployment.logs()}"

    words = re.findall(r"[a-z]+", CHAIN_TEXT.lower())
    counts = Counter(words)
    assert api.xcom(CHAIN_DAG, runs.chain, "split_words") == {"words": words}
    counted = api.xcom(CHAIN_DAG, runs.chain, "count_words")
    assert counted["total"] == len(words)
    assert counted["distinct"] == len(counts)
    assert counted["top"][0] == ["alpha", counts["alpha"]]

    split_request = api.xcom(CHAIN_DAG, runs.chain, "split_words", key="request_id")
    count_request = api.xcom(CHAIN_DAG, runs.chain, "count_words", key="request_id")
    assert split_request
    assert count_request
    assert split_request != count_request
    function_line = f"split {len(CHAIN_TEXT)} characters into {len(words)} words"
    assert function_line in api.xcom(CHAIN_DAG, runs.chain, "split_words", key="log")

    log = api.task_log(CHAIN_DAG, runs.chain, "split_words")
    assert function_line in log, log
    assert split_request in log, log
    count_log = api.task_log(CHAIN_DAG, runs.chain, "count_words")
    assert f"counted {len(words)} words, {len(counts)} distinct" in count_log, count_log


def test_chain_dag_tasks_link_to_the_console(deployment: Deployment, runs: Runs) -> None:
    api = deployment.api
    assert api.wait_for_run(CHAIN_DAG, runs.chain, RUN_TIMEOUT) == "success"

    links = api.extra_links(CHAIN_DAG, runs.chain, "count_words")

    assert links["FunctionGraph Console"] == function_console_url(_urn(deployment, "count_words"))
    log_link = links["FunctionGraph Log (LTS)"] or ""
    assert log_link.startswith(
        "https://console-intl.huaweicloud.com/lts/?region=ap-southeast-1#/cts/logEventsLeftMenu/events?groupId="
    )
    request_id = api.xcom(CHAIN_DAG, runs.chain, "count_words", key="request_id")
    assert log_link.endswith(f"&condition=content:{request_id}")  # the invocation's own log lines


def test_deferrable_dag_completes_in_the_triggerer(deployment: Deployment, runs: Runs) -> None:
    api = deployment.api
    state = api.wait_for_run(DEFERRABLE_DAG, runs.deferrable, RUN_TIMEOUT)
    assert state == "success", f"{api.task_states(DEFERRABLE_DAG, runs.deferrable)}{deployment.logs()}"

    inputs = [1, 2, 3]
    for map_index, x in enumerate(inputs):
        result = api.xcom(DEFERRABLE_DAG, runs.deferrable, "square", map_index=map_index)
        assert result == {"x": x, "square": x * x}
    assert api.xcom(DEFERRABLE_DAG, runs.deferrable, "total") == sum(x * x for x in inputs)

    log = api.task_log(DEFERRABLE_DAG, runs.deferrable, "square", map_index=1)
    started_here = "Started here by the scheduler, with no worker" if AIRFLOW_V_3_3_PLUS else "Deferring"
    assert started_here in log, log
    assert "squaring 2" in log, log

    request_id = api.xcom(DEFERRABLE_DAG, runs.deferrable, "start_count", key="request_id")
    status = api.xcom(DEFERRABLE_DAG, runs.deferrable, "wait_count")
    assert status["request_id"] == request_id
    assert status["status"] == "SUCCESS"


def test_taskflow_dag_passes_an_invocation_result_between_task_processes(
    deployment: Deployment, runs: Runs
) -> None:
    # Each task runs in its own process: the downstream one rebuilds the InvocationResult from XCom
    # with no allowed_deserialization_classes entry in the deployment's configuration.
    api = deployment.api
    state = api.wait_for_run(TASKFLOW_DAG, runs.taskflow, RUN_TIMEOUT)
    assert state == "success", f"{api.task_states(TASKFLOW_DAG, runs.taskflow)}{deployment.logs()}"

    report = api.xcom(TASKFLOW_DAG, runs.taskflow, "report")
    assert report["square"] == 49
    assert report["function"] == str(_urn(deployment, "square"))
    assert "squaring 7" in report["log"]
