"""
At most once per try on the deferrable path, under real ``dag.test()`` (real XCom store, real supervisor).

An earlier run of the trigger is played by the task itself: before deferring, it writes the claim that
an earlier run of the trigger would have left (``claim=...``), then the real trigger runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pendulum
import pytest

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.triggers.claims import CLAIM_XCOM_KEY
from tests.conftest import demo
from tests.dags.dagrun import serialize, states, xcoms

pytestmark = pytest.mark.usefixtures("airflow_db", "emulator_connection")

RESEND_CONN_ID = "functiongraph_resend"


class ClaimedInvokeOperator(InvokeFunctionOperator):
    """Writes ``claim`` (an earlier trigger run's record) for this try instead of the open claim."""

    def __init__(self, *, claim: dict[str, Any] | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.claim = claim

    def _open_claim(self, ti: Any) -> None:
        if self.claim is None:
            super()._open_claim(ti)
        else:
            ti.xcom_push(key=CLAIM_XCOM_KEY, value={"try_number": ti.try_number, **self.claim})


@pytest.fixture
def resend_connection(emulator: Any) -> Iterator[str]:
    """A connection to the emulator that opts in to re-sending (``retry_sync_invoke``)."""
    conn = json.loads(demo.emulator_connection(emulator.url, emulator.region, emulator.project_id))
    conn["extra"]["retry_sync_invoke"] = True
    env = f"AIRFLOW_CONN_{RESEND_CONN_ID.upper()}"
    os.environ[env] = json.dumps(conn)
    yield RESEND_CONN_ID
    os.environ.pop(env, None)


def run_invoke(
    dag_id: str, claim: dict[str, Any] | None, conn_id: str = "functiongraph_default", **operator: Any
) -> tuple[Any, dict[str, Any]]:
    from airflow.sdk import DAG

    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
        ClaimedInvokeOperator(
            task_id="invoke",
            function_name="square",
            payload={"x": 7},
            deferrable=True,
            claim=claim,
            functiongraph_conn_id=conn_id,
            **operator,
        )
    serialize(dag)
    run = dag.test()
    return run, xcoms(run).get("invoke", {})


def test_a_deferred_invocation_records_its_claim_and_outcome(emulator: Any) -> None:
    before = emulator.invocation_count("square")
    run, pushed = run_invoke("fgs_claim_fresh", claim=None)

    assert states(run) == {"invoke": "success"}
    assert pushed["return_value"] == {"x": 7, "square": 49}
    assert emulator.invocation_count("square") == before + 1
    claim = pushed[CLAIM_XCOM_KEY]
    assert claim["try_number"] == 1
    assert claim["state"] == "done"
    assert claim["event"]["status"] == "success"
    assert claim["event"]["result"]["request_id"] == pushed["request_id"]


def test_a_claim_without_outcome_fails_the_task_and_does_not_invoke_again(
    emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    before = emulator.invocation_count("square")
    capsys.readouterr()
    # retries would invoke again in a new try: this failure is final, clearing the task is the user's call
    run, pushed = run_invoke("fgs_claim_unknown", claim={"state": "sent"}, retries=2)
    output = capsys.readouterr().out

    assert states(run) == {"invoke": "failed"}
    assert emulator.invocation_count("square") == before
    assert "InvocationOutcomeUnknownError" in output
    assert "may have run" in output
    assert f"{emulator.urn('square')} (try 1)" in output
    assert "clear the task" in output
    assert "retry_sync_invoke" in output
    assert "return_value" not in pushed
    assert pushed["error_type"] == "InvocationOutcomeUnknownError"  # the view counts it as such


def test_a_claim_with_a_recorded_outcome_resumes_with_it(emulator: Any) -> None:
    _, first_xcoms = run_invoke("fgs_claim_recorded_source", claim=None)
    recorded = first_xcoms[CLAIM_XCOM_KEY]["event"]
    before = emulator.invocation_count("square")

    run, pushed = run_invoke("fgs_claim_recorded", claim={"state": "done", "event": recorded})

    assert states(run) == {"invoke": "success"}
    assert emulator.invocation_count("square") == before
    assert pushed["return_value"] == {"x": 7, "square": 49}
    assert pushed["request_id"] == recorded["result"]["request_id"]


def test_a_claim_released_by_a_run_cancelled_before_sending_is_taken_and_invoked(emulator: Any) -> None:
    before = emulator.invocation_count("square")
    run, pushed = run_invoke("fgs_claim_released", claim={"state": "released", "nonce": "cancelled-run"})

    assert states(run) == {"invoke": "success"}
    assert emulator.invocation_count("square") == before + 1
    assert pushed["return_value"] == {"x": 7, "square": 49}
    assert pushed[CLAIM_XCOM_KEY]["state"] == "done"


def test_a_claim_of_another_try_is_ignored(emulator: Any) -> None:
    before = emulator.invocation_count("square")
    run, pushed = run_invoke("fgs_claim_other_try", claim={"state": "sent", "try_number": 99})

    assert states(run) == {"invoke": "success"}
    assert emulator.invocation_count("square") == before + 1
    assert pushed[CLAIM_XCOM_KEY]["try_number"] == 1


def test_retry_sync_invoke_re_sends_and_says_so(
    emulator: Any, resend_connection: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = emulator.invocation_count("square")
    capsys.readouterr()
    run, pushed = run_invoke("fgs_claim_resend", claim={"state": "sent"}, conn_id=resend_connection)
    output = capsys.readouterr().out

    assert states(run) == {"invoke": "success"}
    assert emulator.invocation_count("square") == before + 1
    assert "sending the invocation again because the connection sets retry_sync_invoke" in output
    assert pushed["return_value"] == {"x": 7, "square": 49}
