"""
The FunctionGraph view's reads of the metadata DB, on the real (sqlite) DB of ``dag.test()``: the catalog
read once per DAG version, the invocations query whose size does not grow with the DAGs, and a failed
query answered as JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pendulum
import pytest
from sqlalchemy import select, update

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.ui.catalog import FunctionCall
from airflow_provider_fgs.ui.catalog_cache import CatalogCache
from airflow_provider_fgs.ui.invocations import task_instance_rows
from airflow_provider_fgs.ui.task_filter import IN_LIST_LIMIT, TaskFilter
from tests.dags.dagrun import serialize

pytestmark = pytest.mark.usefixtures("airflow_db", "emulator_connection")


def invoking_dag(dag_id: str, **functions: str) -> Any:
    """A DAG whose task ``task_id`` invokes ``functions[task_id]`` (with ``{"x": 3}``), plus a plain task."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
        EmptyOperator(task_id="plain")
        for task_id, function in functions.items():
            InvokeFunctionOperator(task_id=task_id, function_name=function, payload={"x": 3})
    return dag


@pytest.fixture
def session() -> Iterator[Any]:
    from airflow.utils.session import create_session

    with create_session() as session:
        yield session


def request(cache: CatalogCache, readable: set[str] | None = None) -> list[Any]:
    """One request's read of the catalog, in its own session as the API server gives each request."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        everything = set(session.scalars(select(DagModel.dag_id)))
        return cache.catalog(session, everything if readable is None else readable)


def functions_of(catalog: list[Any], dag_id: str) -> set[str]:
    return {entry.function for entry in catalog for call in entry.calls if call.dag_id == dag_id}


def test_the_catalog_reads_a_dag_again_only_when_its_serialized_version_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow import settings
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    # Write each change at once: 3.2+ read the setting when writing, 3.1 once, into airflow.settings.
    monkeypatch.setenv("AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL", "0")
    monkeypatch.setattr(settings, "MIN_SERIALIZED_DAG_UPDATE_INTERVAL", 0, raising=False)

    serialize(invoking_dag("fgs_view_cache_a", invoke="square"))
    serialize(invoking_dag("fgs_view_cache_b", invoke="hello"))
    cache = CatalogCache()

    catalog = request(cache)
    assert functions_of(catalog, "fgs_view_cache_a") == {"default/square"}
    assert functions_of(catalog, "fgs_view_cache_b") == {"default/hello"}
    read_at_first = cache.dags_read
    assert read_at_first >= 2

    request(cache)
    assert cache.dags_read == read_at_first  # nothing changed: nothing read

    made = []
    with create_session() as session:
        everything = cache.read(session, set())[1]
    for _ in range(2):  # what is derived from the whole catalog is made once per catalog
        assert cache.derived(everything, "key", lambda: made.append(1) or len(made)) == 1

    serialize(invoking_dag("fgs_view_cache_a", invoke="divide"))  # the DAG's file changed
    catalog = request(cache)
    assert cache.dags_read == read_at_first + 1
    assert functions_of(catalog, "fgs_view_cache_a") == {"default/divide"}

    with create_session() as session:
        everything = cache.read(session, set())[1]
    assert cache.derived(everything, "key", lambda: made.append(1) or len(made)) == 2  # made again

    # Permissions come per request: a user who reads one DAG sees its functions only.
    only_b = request(cache, {"fgs_view_cache_b"})
    assert {entry.function for entry in only_b} == {"default/hello"}

    # A DAG whose file is deleted is marked stale and leaves the catalog.
    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == "fgs_view_cache_b").values(is_stale=True))
    catalog = request(cache)
    assert functions_of(catalog, "fgs_view_cache_b") == set()
    assert cache.dags_read == read_at_first + 1


def invoke_call(dag_id: str, task_id: str) -> FunctionCall:
    """A call by an ``InvokeFunctionOperator`` task, as the catalog finds it."""
    operator = "InvokeFunctionOperator"
    return FunctionCall(dag_id, task_id, operator, "invoke", "latest", mapped=False, task_type=operator)


@pytest.mark.parametrize("other_dags", [0, 3 * IN_LIST_LIMIT])
def test_the_invocations_of_a_function_are_its_calls_only_newest_first_whatever_the_number_of_dags(
    session: Any, other_dags: int
) -> None:
    """
    Two runs of a DAG whose tasks ``first`` and ``second`` call two functions; the calls of the first
    function are ``first`` here and ``second`` in DAGs without runs. Past IN_LIST_LIMIT DAGs the query
    no longer lists them (sqlite refused the per-DAG query at 1,000: "Expression tree is too large").
    """
    from airflow.models.taskinstance import TaskInstance

    dag_id = f"fgs_view_rows_{other_dags}"
    dag = invoking_dag(dag_id, first="square", second="hello")
    serialize(dag)
    runs = [dag.test(), dag.test()]
    calls = [
        invoke_call(dag_id, "first"),
        *(invoke_call(f"fgs_far_{i}", "invoke") for i in range(other_dags)),  # DAGs without runs
        invoke_call("fgs_far_x", "second"),
    ]

    tasks = TaskFilter.of(calls)
    rows = task_instance_rows(session, tasks, limit=10, offset=0)

    assert [(row.task_id, row.run_id) for row in rows] == [
        ("first", runs[1].run_id),
        ("first", runs[0].run_id),
    ]
    assert rows[0].start_date >= rows[1].start_date
    assert task_instance_rows(session, tasks, limit=1, offset=1)[0].run_id == runs[0].run_id
    # Read from the last day, then week, month, and all: runs older than each span are found as well.
    for days in (3, 20, 100):
        later = rows[0].start_date + timedelta(days=days)
        assert task_instance_rows(session, tasks, limit=10, offset=0, now=later) == rows
    # Every row the DB has of that task: the narrowing dropped none.
    recorded = session.scalars(
        select(TaskInstance.run_id).where(TaskInstance.dag_id == dag_id, TaskInstance.task_id == "first")
    ).all()
    assert sorted(recorded) == sorted(run.run_id for run in runs)


def test_a_failed_query_is_a_json_error_naming_the_databases_message(tmp_path: Any) -> None:
    """A real query on a database without Airflow's tables, through the view's app."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.common.db.common import SessionDep
    from airflow.api_fastapi.core_api.security import GetUserDep
    from fastapi.testclient import TestClient
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from airflow_provider_fgs.ui.app import create_app

    create_auth_manager()
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")

    def empty_database() -> Iterator[Session]:
        with Session(engine) as session:
            yield session

    app = create_app()
    app.dependency_overrides[SessionDep.__metadata__[0].dependency] = empty_database
    app.dependency_overrides[GetUserDep.__metadata__[0].dependency] = lambda: SimpleAuthManagerUser(
        username="admin", role="admin"
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/api/functions", "/api/invocations", "/api/batches"):
            response = client.get(path)
            assert response.status_code == 503, (path, response.text)
            detail = response.json()["detail"]
            assert detail.startswith(
                "The metadata database could not answer: OperationalError: no such table"
            )
            assert "SELECT" not in detail  # the statement stays in the server's log


def test_the_charts_count_each_outcome_with_the_functions_duration_and_billing(emulator: Any) -> None:
    """One run whose tasks end each way; the series is read back as the view's charts read it."""
    from airflow.sdk import DAG
    from airflow.utils.session import create_session

    from airflow_provider_fgs.ui.stats import WINDOWS, invocation_stats
    from tests.dags.dagrun import states, xcoms
    from tests.dags.test_deferrable_at_most_once import ClaimedInvokeOperator

    with DAG("fgs_view_stats", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
        InvokeFunctionOperator(task_id="ok", function_name="square", payload={"x": 4})
        InvokeFunctionOperator(task_id="ok_too", function_name="square", payload={"x": 5})
        InvokeFunctionOperator(task_id="function_error", function_name="divide", payload={"a": 1, "b": 0})
        InvokeFunctionOperator(task_id="platform_error", function_name="no-such-function")
        ClaimedInvokeOperator(  # an earlier trigger run's claim, never answered: the outcome is unknown
            task_id="unknown",
            function_name="square",
            payload={"x": 6},
            deferrable=True,
            claim={"state": "sent"},
        )
    serialize(dag)
    run = dag.test()
    assert states(run) == {
        "ok": "success",
        "ok_too": "success",
        "function_error": "failed",
        "platform_error": "failed",
        "unknown": "failed",
    }
    ran_here = ("ok", "ok_too", "function_error", "platform_error")
    unknown = FunctionCall(
        "fgs_view_stats", "unknown", "Claimed", "invoke", "latest", False, "ClaimedInvokeOperator"
    )
    tasks = TaskFilter.of([*(invoke_call("fgs_view_stats", task_id) for task_id in ran_here), unknown])

    with create_session() as session:
        # "now" as the last task started, so that the run falls within the last interval
        last_start = max(ti.start_date for ti in run.get_task_instances())
        stats = invocation_stats(session, tasks, WINDOWS["24h"], last_start)

    assert stats["totals"] == {
        "success": 2,
        "function_error": 1,
        "platform_error": 1,
        "outcome_unknown": 1,
        "gb_seconds": stats["totals"]["gb_seconds"],
    }
    pushed = xcoms(run)
    billed = [pushed[task]["summary"] for task in ("ok", "ok_too", "function_error")]
    expected_gb_s = sum(s["billingDuration"] / 1000 * s["memorySize"] / 1024 for s in billed)
    assert stats["totals"]["gb_seconds"] == pytest.approx(expected_gb_s, abs=1e-6)
    assert len(stats["intervals"]) == 24
    assert stats["intervals"][-1]["success"] >= 1  # "now" is within the last interval
    # The run's tasks started within seconds: in the last interval, or the one before past an hour.
    assert sum(interval["success"] for interval in stats["intervals"][-2:]) == 2
    with_durations = [interval for interval in stats["intervals"] if interval["p50_ms"] is not None]
    durations = sorted(summary["duration"] for summary in billed)
    for interval in with_durations:  # within the histogram's bins around the durations measured
        assert 0 < interval["p50_ms"] <= interval["p95_ms"] <= 2 * max(durations) + 1


def test_a_settled_intervals_tally_is_kept_and_the_recent_ones_are_read_again(emulator: Any) -> None:
    """The tally kept for a settled interval is used as is; the intervals since are read from the DB."""
    from airflow.utils.session import create_session

    from airflow_provider_fgs.ui.stats import SETTLE, WINDOWS, SettledTallies, Tally, invocation_stats

    dag = invoking_dag("fgs_view_settled", invoke="square")
    serialize(dag)
    run = dag.test()
    tasks = TaskFilter.of([invoke_call("fgs_view_settled", "invoke")])
    window = WINDOWS["24h"]
    started = max(ti.start_date for ti in run.get_task_instances())
    now = started + SETTLE + window.step  # the run's interval has settled
    bounds = window.bounds(now)
    run_interval = next(i for i in range(window.intervals) if bounds[i] <= started < bounds[i + 1])
    kept = SettledTallies()
    with create_session() as session:
        first = invocation_stats(session, tasks, window, now, settled=kept)
        assert first["intervals"][run_interval]["success"] == 1  # read from the DB, then kept
        earlier = run_interval - 1
        kept.put(
            (tasks.digest, window.step, bounds[earlier]),
            Tally(counts={"success": 99, "function_error": 0, "platform_error": 0, "outcome_unknown": 0}),
        )
        second = invocation_stats(session, tasks, window, now, settled=kept)
    assert second["intervals"][earlier]["success"] == 99  # not read again: the kept tally
    assert second["intervals"][run_interval]["success"] == 1
    assert second["totals"]["success"] == 100
