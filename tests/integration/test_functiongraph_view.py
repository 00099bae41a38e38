"""
The FunctionGraph view's JSON, served by the plugin in a real deployment's API server: which DAGs call
which functions (from the serialized DAGs), recent invocations (task instances and their XComs), live
release state, an Airflow login required, and only the DAGs the auth manager lets the user read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from airflow_provider_fgs.emulator.invoker import ERR_HANDLER
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook

from .airflow_api import AirflowApi
from .conftest import (
    CHAIN_DAG,
    CONN_ID,
    INTEGRATION_TIMEOUT,
    METRICS_DAG,
    RUN_TIMEOUT,
    SHAPES,
    Deployment,
    Runs,
)
from .deployment import DAG_READER, DAG_READER_DAG
from .processes import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(INTEGRATION_TIMEOUT),
    pytest.mark.usefixtures("functiongraph_connection"),
]
DAG_ID = METRICS_DAG  # invocations that succeed (noop; async: environ, memory), one that fails (fail)


def _get(api: AirflowApi, path: str, **params: Any) -> requests.Response:
    """``GET /functiongraph/api/<path>`` as the user that ``api`` logged in."""
    return api.session.get(f"{api.base_url}/functiongraph/api/{path}", params=params, timeout=30)


def _view(api: AirflowApi, path: str, **params: Any) -> Any:
    response = _get(api, path, **params)
    assert response.status_code == 200, f"{response.status_code}: {response.text[:2000]}"
    return response.json()


def _function(functions: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [f for f in functions if f["function"] == name and f["conn_id"] == CONN_ID]
    return found


def test_lists_the_functions_the_dags_call_with_their_tasks(deployment: Deployment) -> None:
    for dag_id in (
        DAG_ID,
        CHAIN_DAG,
        "functiongraph_decorator",
        "functiongraph_async",
        "functiongraph_release",
    ):
        deployment.api.wait_for_dag(dag_id)
    body = _view(deployment.api, "functions", limit=100)
    functions = body["functions"]
    assert body["total_entries"] == len(functions)

    fail = _function(functions, "default/fail")
    assert {(c["dag_id"], c["task_id"], c["operator"], c["kind"]) for c in fail["calls"]} >= {
        (DAG_ID, "fail", "InvokeFunctionOperator", "invoke")
    }
    split_words = _function(functions, "default/split_words")
    assert CHAIN_DAG in split_words["dag_ids"]
    # the decorator, mapped, and the async operator with its sensor
    square = _function(functions, "default/square")
    assert ("functiongraph_decorator", "square", "@task.functiongraph", True) in {
        (c["dag_id"], c["task_id"], c["operator"], c["mapped"]) for c in square["calls"]
    }
    kinds = {c["kind"] for f in functions for c in f["calls"]}
    assert {"invoke", "invoke_async", "wait", "release"} <= kinds


ADDED_DAG = """
import pendulum
from airflow.sdk import DAG

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

with DAG("fgs_view_added", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    InvokeFunctionOperator(task_id="invoke", function_name="added_to_the_catalog")
"""


def test_the_catalog_follows_a_dag_file_added_then_deleted(deployment: Deployment) -> None:
    """The API server's catalog, kept between requests, reads a new DAG and drops a deleted one."""
    api = deployment.api
    _view(api, "functions", limit=1)  # the catalog is built before the DAG exists
    dag_file = deployment.airflow.dags_folder / "fgs_view_added.py"

    def listed() -> list[dict[str, Any]]:
        return _view(api, "functions", search="added_to_the_catalog")["functions"]

    dag_file.write_text(ADDED_DAG, encoding="utf-8")
    try:
        (entry,) = wait_for("the view to list the new DAG's function", lambda: listed() or None, 120)
        assert entry["dag_ids"] == ["fgs_view_added"]
    finally:
        dag_file.unlink()
    wait_for("the view to drop the deleted DAG's function", lambda: not listed() or None, 120)


def test_a_search_keeps_the_functions_named_so_or_called_by_such_a_dag(deployment: Deployment) -> None:
    api = deployment.api
    api.wait_for_dag(DAG_ID)
    by_dag = _view(api, "functions", search=DAG_ID.upper(), limit=100)
    metrics_functions = {"default/noop", "default/fail", "default/environ", "default/memory"}
    assert {f["function"] for f in by_dag["functions"]} == metrics_functions
    assert by_dag["total_entries"] == len(metrics_functions)
    second = _view(api, "functions", search=DAG_ID, limit=1, offset=1)
    assert second["total_entries"] == len(metrics_functions)
    assert [f["function"] for f in second["functions"]] == [by_dag["functions"][1]["function"]]
    assert _view(api, "functions", search="environ")["functions"][0]["function"] == "default/environ"


def test_shows_recent_invocations_from_task_instances_and_xcoms(
    deployment: Deployment, metrics_run: str
) -> None:
    api = deployment.api
    failed = _view(api, "invocations", function="default/fail", conn_id=CONN_ID)["invocations"]
    row = next(r for r in failed if r["run_id"] == metrics_run)
    assert row["state"] == "failed"
    assert row["error_code"] == ERR_HANDLER
    assert row["request_id"] == api.xcom(DAG_ID, metrics_run, "fail", key="request_id")
    assert row["ti_url"] == f"/dags/{DAG_ID}/runs/{quote(metrics_run, safe='')}/tasks/fail"

    succeeded = _view(api, "invocations", function="default/noop", dag_id=DAG_ID)["invocations"]
    row = next(r for r in succeeded if r["run_id"] == metrics_run)
    assert (row["state"], row["error_code"]) == ("success", None)
    assert row["billed_duration_ms"] == api.xcom(DAG_ID, metrics_run, "succeed", key="billing_duration_ms")
    summary = api.xcom(DAG_ID, metrics_run, "succeed", key="summary")
    assert row["memory_mb"] == summary["memorySize"]
    assert row["gb_seconds"] == pytest.approx(
        row["billed_duration_ms"] / 1000 * row["memory_mb"] / 1024, abs=1e-6
    )
    assert row["start_date"]
    assert row["duration_s"] is not None


def test_pages_through_invocations_newest_first(deployment: Deployment, metrics_run: str) -> None:
    api = deployment.api
    first = _view(api, "invocations", limit=1)
    second = _view(api, "invocations", limit=1, offset=1)
    assert first["has_more"]
    rows = first["invocations"] + second["invocations"]
    keys = [(r["dag_id"], r["run_id"], r["task_id"], r["map_index"]) for r in rows]
    assert len(set(keys)) == len(keys) == 2
    starts = [r["start_date"] for r in rows if r["start_date"]]
    assert starts == sorted(starts, reverse=True)
    assert _get(api, "invocations", limit=1000).status_code == 422


def _every_invocation(api: AirflowApi, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = _view(api, "invocations", limit=100, offset=len(rows), **params)
        rows += page["invocations"]
        if not page["has_more"]:
            return rows


# On sqlite and on PostgreSQL: the summaries' fields are read by the database (JSON, JSONB).
@pytest.mark.parametrize("deployment", SHAPES, indirect=True)
def test_the_charts_series_count_invocations_by_outcome_with_duration_and_billing(
    deployment: Deployment, metrics_run: str
) -> None:
    api = deployment.api
    everything = _view(api, "stats", window="24h")
    assert len(everything["intervals"]) == 24
    assert everything["totals"]["success"] >= 1
    assert everything["totals"]["function_error"] >= 1  # the metrics run's fail task

    fail = _view(api, "stats", window="30d", function="default/fail", conn_id=CONN_ID)
    failed_rows = _every_invocation(api, function="default/fail", conn_id=CONN_ID)
    assert fail["totals"]["function_error"] == sum(r["state"] == "failed" for r in failed_rows) >= 1
    assert fail["totals"]["success"] == fail["totals"]["platform_error"] == 0
    assert len(fail["intervals"]) == 30

    noop = _view(api, "stats", window="7d", function="default/noop", conn_id=CONN_ID)
    rows = [
        r for r in _every_invocation(api, function="default/noop", conn_id=CONN_ID) if r["state"] == "success"
    ]
    assert noop["totals"]["success"] == len(rows)
    assert noop["totals"]["gb_seconds"] == pytest.approx(sum(r["gb_seconds"] for r in rows), abs=1e-5)
    with_duration = [i for i in noop["intervals"] if i["p50_ms"] is not None]
    assert with_duration
    assert all(i["p50_ms"] <= i["p95_ms"] for i in with_duration)

    assert _get(api, "stats", window="1y").status_code == 422


def test_reads_the_live_release_state_through_the_connection(
    deployment: Deployment, probe_hook: FunctionGraphHook
) -> None:
    probe_hook.publish_function_version("noop", version="view-v1")
    probe_hook.set_alias("noop", "view-live", "view-v1", weights={"latest": 10})
    state = _view(deployment.api, "release", conn_id=CONN_ID, function="default/noop")
    assert "view-v1" in {v["version"] for v in state["versions"]}
    assert ("view-live", "view-v1", {"latest": 10}) in [
        (a["name"], a["version"], a["weights"]) for a in state["aliases"]
    ]
    # only functions that a readable DAG calls, through the connection it calls them with
    other = _get(deployment.api, "release", conn_id="some_other_connection", function="default/noop")
    assert other.status_code == 404, other.text


def test_needs_an_airflow_login(deployment: Deployment) -> None:
    base = deployment.airflow.url
    assert requests.get(f"{base}/functiongraph/api/functions", timeout=30).status_code == 401
    forged = {"Authorization": "Bearer not-a-token"}
    assert requests.get(f"{base}/functiongraph/api/invocations", headers=forged, timeout=30).status_code in (
        401,
        403,
    )
    page = requests.get(f"{base}/functiongraph/", timeout=30)  # the page holds no data of its own
    assert page.status_code == 200
    assert "FunctionGraph" in page.text


def test_a_user_restricted_to_one_dag_sees_only_that_dag(
    deployment: Deployment, runs: Runs, metrics_run: str
) -> None:
    reader = AirflowApi(deployment.airflow.url, DAG_READER, deployment.airflow.password)
    # the deployment's auth manager restricts the user (Airflow's own API agrees)
    dags = reader.request("GET", "/dags", params={"limit": 100}).json()["dags"]
    assert [d["dag_id"] for d in dags] == [DAG_READER_DAG]

    functions = _view(reader, "functions")["functions"]
    assert {f["function"] for f in functions} == {"default/split_words", "default/count_words"}
    assert {dag for f in functions for dag in f["dag_ids"]} == {DAG_READER_DAG}
    deployment.api.wait_for_run(CHAIN_DAG, runs.chain, RUN_TIMEOUT)
    invocations = _view(reader, "invocations", limit=100)["invocations"]
    assert invocations
    assert {r["dag_id"] for r in invocations} == {DAG_READER_DAG}

    hidden = _get(reader, "release", conn_id=CONN_ID, function="default/noop")
    assert hidden.status_code == 404, hidden.text
    assert _view(reader, "invocations", function="default/fail")["invocations"] == []


def test_lists_batches_with_their_counts(deployment: Deployment, tmp_path: Path) -> None:
    api = deployment.api
    dag_id = "functiongraph_batch_deferred"
    run_id = api.start_run(dag_id, conf={"count_file": str(tmp_path / "runs.txt")})
    assert api.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT) == "success"

    rows = _view(api, "batches", function="default/batch_item", dag_id=dag_id)["batches"]

    row = next(r for r in rows if r["run_id"] == run_id)
    assert (row["state"], row["status"], row["items"], row["ended"]) == ("success", "success", 60, 60)
    assert row["counts"] == {
        "success": 60,
        "function_error": 0,
        "platform_error": 0,
        "outcome_unknown": 0,
        "not_started": 0,
    }
    assert row["wall_seconds"] > 0
    assert _view(api, "invocations", dag_id=dag_id)["invocations"] == []  # a batch is no single invocation
