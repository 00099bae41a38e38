"""
No secret leaks from a real DAG run, in each auth mode.

For AK/SK with a security token, IAM password, and a pre-issued token, ``functiongraph_default`` is pointed
at the emulator with those credentials and the example DAGs ``functiongraph_deferrable`` (deferrable
mapped invocations, an async invocation waited for by a deferrable sensor) and ``functiongraph_failing``
(a function error fails the task) run with real ``dag.test()``. The SK, password, tokens and security
token must appear in none of: the task logs (what ``dag.test()`` prints), the XComs and rendered template
fields in the metadata DB, the exception text of the failing task, the serialized kwargs of every trigger
and the events they fired. A run with a wrong password adds an ``AuthenticationError`` to the failures.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
from airflow.sdk.definitions import dag as dag_module

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.protocol.iam import build_password_token_request, parse_token_response
from tests.connections import emulator_extra
from tests.dags.dagrun import run_dag, states, xcoms

CONN_ENV = "AIRFLOW_CONN_FUNCTIONGRAPH_DEFAULT"
SECRET_KEY = "demo-secret-key"
PASSWORD = "demo-password"


def issue_token(emulator: Any) -> str:
    """A token from the emulator's IAM, fetched as a user would before pasting it into a connection."""
    request = build_password_token_request(
        emulator.url,
        domain_name="demo-domain",
        user_name="demo-user",
        password=PASSWORD,
        project_id=emulator.project_id,
    )
    response = requests.post(request.url, data=request.body, headers=request.headers, timeout=10)
    return parse_token_response(response.status_code, response.headers, response.content).value


def connection(emulator: Any, mode: str) -> tuple[str, list[str]]:
    """``functiongraph_default`` as JSON for ``mode``, and the secrets it holds."""
    extra = emulator_extra(emulator, retry_min_wait=0.05)
    login, password = "", ""
    if mode == "aksk":
        security_token = f"sts-{uuid.uuid4().hex}"
        login, password, extra["security_token"] = "DEMOACCESSKEY", SECRET_KEY, security_token
        secrets = [SECRET_KEY, security_token]
    elif mode in ("password", "wrong-password"):
        login = "demo-user"
        password = PASSWORD if mode == "password" else f"wrong-{uuid.uuid4().hex}"
        extra["domain_name"] = "demo-domain"
        secrets = [password]
    else:
        extra["token"] = issue_token(emulator)
        secrets = [extra["token"]]
    return json.dumps(
        {"conn_type": "functiongraph", "login": login, "password": password, "extra": extra}
    ), secrets


def rendered_fields_of_run(run: Any) -> list[Any]:
    """Every task's rendered template fields of ``run`` (mapped tasks included)."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rtif
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(
            session.scalars(
                select(Rtif.rendered_fields).where(Rtif.dag_id == run.dag_id, Rtif.run_id == run.run_id)
            ).all()
        )


@pytest.fixture
def triggers_seen(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records each trigger ``dag.test()`` runs in line (its serialized form) and the event it fired."""
    seen: list[Any] = []
    original = dag_module._run_inline_trigger

    def recording(trigger: Any, ti: Any) -> Any:
        event = original(trigger, ti)
        seen.append({"serialized": trigger.serialize(), "event": event.payload if event else None})
        return event

    monkeypatch.setattr(dag_module, "_run_inline_trigger", recording)
    return seen


@pytest.mark.parametrize("mode", ["aksk", "password", "token"])
def test_no_secret_in_logs_xcom_rendered_fields_errors_or_triggers(
    example_dag_bag: Any,
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    triggers_seen: list[Any],
    mode: str,
) -> None:
    conn_json, secrets = connection(emulator, mode)
    monkeypatch.setenv(CONN_ENV, conn_json)
    tokens_before = emulator.request_count("token")
    capsys.readouterr()

    deferrable = run_dag(example_dag_bag, "functiongraph_deferrable")
    failing = run_dag(example_dag_bag, "functiongraph_failing")
    captured = capsys.readouterr()

    assert str(deferrable.state) == "success", states(deferrable)
    assert states(failing) == {"divide_by_zero": "failed"}
    if mode == "password":
        assert emulator.request_count("token") > tokens_before  # the password was really used
        secrets.append(FunctionGraphHook()._tokens.token())  # the IAM token the tasks were given
    else:
        assert emulator.request_count("token") == tokens_before
    task_log = captured.out + captured.err
    assert task_log.count("Deferring the invocation of") == 3
    assert "FunctionError: Function urn:fss:" in task_log  # the failing task's exception text
    assert len(triggers_seen) >= 4  # three invocations and at least one status poll
    assert {t["serialized"][0].rsplit(".", 1)[1] for t in triggers_seen} == {
        "FunctionGraphInvokeTrigger",
        "FunctionGraphAsyncInvocationTrigger",
    }

    stored = json.dumps(
        {
            "xcom": [xcoms(deferrable), xcoms(failing)],
            "rendered": rendered_fields_of_run(deferrable) + rendered_fields_of_run(failing),
            "triggers": triggers_seen,
        },
        default=str,
    )
    assert '"square": 9' in stored  # the XComs really are in there
    for secret in secrets:
        assert secret not in task_log
        assert secret not in stored


def test_wrong_password_failure_text_holds_no_password(
    example_dag_bag: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conn_json, secrets = connection(emulator, "wrong-password")
    monkeypatch.setenv(CONN_ENV, conn_json)
    capsys.readouterr()
    run = run_dag(example_dag_bag, "functiongraph_single_invoke")
    captured = capsys.readouterr()
    assert states(run) == {"invoke_hello": "failed"}
    task_log = captured.out + captured.err
    assert "AuthenticationError: IAM rejected IAM user 'demo-user' of domain 'demo-domain'" in task_log
    stored = json.dumps([xcoms(run), rendered_fields_of_run(run)], default=str)
    for secret in secrets:
        assert secret not in task_log
        assert secret not in stored
