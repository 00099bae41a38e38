"""
Failures that no retry can fix fail the task at once, without Airflow's retries; transient ones retry.

Real ``dag.test()`` runs of tasks with ``retries``: the emulator counts what reached it, so a permanent
failure must show one request (or none, for settings caught before any call) and one try.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from tests.connections import emulator_extra
from tests.dags.dagrun import states

CONN_ID = "fgs_permanent"


@pytest.fixture(autouse=True)
def _metadata_db(airflow_db: Path) -> None:
    """``dag.test()`` needs the migrated metadata DB."""


def _connection(emulator: Any, monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    extra = emulator_extra(emulator, retry_min_wait=0.01, retry_max_wait=0.05)
    login, password = "DEMOACCESSKEY", changes.pop("password", "demo-secret-key")
    for key, value in changes.items():
        if value is None:
            extra.pop(key, None)
        else:
            extra[key] = value
    connection = {"conn_type": "functiongraph", "login": login, "password": password, "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))


def _run(dag_id: str, **invoke: Any) -> tuple[str, int]:
    """Run one invoke task with ``retries=3``; its final state and number of tries."""
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False) as dag:
        InvokeFunctionOperator(
            task_id="invoke",
            functiongraph_conn_id=CONN_ID,
            retries=3,
            retry_delay=timedelta(seconds=0),
            **invoke,
        )
    _register(dag)
    run = dag.test()
    (ti,) = run.get_task_instances()
    return states(run)["invoke"], ti.try_number


def _register(dag: Any) -> None:
    """Write the DAG defined here to the metadata DB, as the dag-processor does for a DAG file."""
    from airflow_provider_fgs.compat import store_dag

    store_dag(dag)


@pytest.mark.parametrize(
    ("case", "changes", "invoke", "error", "requests"),
    [
        ("not-found", {}, {"function_name": "no-such-function"}, "NotFoundError", 1),
        # refused at its first request, the function's config read: no invocation is sent
        ("wrong-sk", {"password": "wrong-secret"}, {"function_name": "hello"}, "AuthenticationError", 0),
        ("bad-alias", {}, {"function_name": "hello", "alias": "bad alias!"}, "InvalidRequestError", 0),
        ("bad-settings", {"region": None}, {"function_name": "hello"}, "InvalidRequestError", 0),
        (
            "too-large",
            {},
            {"function_name": "hello", "payload": "x" * (7 * 1024 * 1024)},
            "InvalidRequestError",
            0,
        ),
    ],
)
def test_a_permanent_failure_fails_the_task_without_retries(
    emu: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    changes: dict[str, Any],
    invoke: dict[str, Any],
    error: str,
    requests: int,
) -> None:
    _connection(emu, monkeypatch, **changes)
    state, tries = _run(f"fgs_permanent_{case.replace('-', '_')}", **invoke)
    output = capsys.readouterr()
    assert state == "failed"
    assert tries == 1
    assert emu.request_count("invoke") == requests
    # a refused key is sent once, not retried
    assert emu.rejection_count("signature") == (1 if case == "wrong-sk" else 0)
    log = output.out + output.err
    assert error in log  # the typed error and its message stay in the task log
    assert "wrong-secret" not in log


def test_a_transient_failure_still_uses_airflows_retries(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _connection(emu, monkeypatch)
    # the function runs, then the connection breaks: the hook must not re-send, Airflow retries the task
    emu.inject_fault("drop_after", count=1, function="hello", route="invoke")
    state, tries = _run("fgs_transient", function_name="hello")
    assert state == "success"
    assert tries == 2
    assert emu.invocation_count("hello") == 2
