"""
Secrets stay out of what the failure paths write: retry log lines, exception text and trigger error events,
for every injected fault and rejection, in each auth mode.

The happy paths and a wrong password are covered by ``tests/hooks/test_secrets.py``; whole DAG runs by
``tests/dags/test_secrets_dag.py``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_fgs.client.tokens import TOKEN_CACHE
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.protocol.errors import FunctionGraphError
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.triggers.functiongraph import FunctionGraphInvokeTrigger
from tests.conftest import clear_host_cache
from tests.connections import DEMO_KEY, DEMO_USER
from tests.reliability.conftest import Connect
from tests.triggering import run_trigger

# (mode, fault kind, fault route): each is injected for every request it matches.
SCENARIOS = [
    ("aksk", "unavailable", "invoke"),
    ("aksk", "truncate", "invoke"),
    ("aksk", "garbage", "invoke"),
    ("aksk", "drop", "invoke"),
    ("password", "unavailable", "token"),
    ("password", "throttle", "token"),
    ("password", "drop", "token"),
    ("password", "truncate", "token"),
    ("password", "revoked", None),
    ("token", "revoked", None),
    ("aksk", "wrong-secret", None),
    ("password", "wrong-password", None),
]


def _texts_of(action: Callable[[], Any]) -> list[str]:
    try:
        outcome = action()
    except FunctionGraphError as err:
        return [str(err), repr(err), json.dumps(vars(err), default=str)]
    return [json.dumps(outcome, default=str) if isinstance(outcome, dict) else repr(outcome)]


@pytest.mark.parametrize(("mode", "kind", "route"), SCENARIOS, ids=[f"{m}-{k}-{r}" for m, k, r in SCENARIOS])
def test_failure_paths_keep_secrets_out(
    emu: Any,
    connect: Connect,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    kind: str,
    route: str | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    security_token = f"sts-{uuid.uuid4().hex}"
    wrong = f"wrong-{uuid.uuid4().hex}"
    secrets = [DEMO_KEY[1], DEMO_USER[2], security_token, wrong]
    overrides: dict[str, Any] = {"retry_attempts": 1}
    if mode == "aksk":
        overrides["security_token"] = security_token
        if kind == "wrong-secret":
            overrides["password"] = wrong
    if kind == "wrong-password":
        overrides["password"] = wrong
    if mode == "token":
        seed = FunctionGraphHook(connect("password"))
        overrides["token"] = seed._tokens.token()
    conn_id = connect(mode, **overrides)
    hook = FunctionGraphHook(conn_id)
    if mode in ("password", "token") and kind != "wrong-password":
        hook.invoke("hello")  # a token in use before the fault
        secrets.append(hook._tokens.token())
    if kind == "revoked":
        emu.revoke_tokens()
        if mode == "password":
            emu.set_token_ttl(0.0)  # the refreshed token is refused too: the failure path runs
    elif kind not in ("wrong-secret", "wrong-password"):
        emu.inject_fault(kind, count=None, route=route)
        if route == "token":
            TOKEN_CACHE.clear()  # so the next call must go to IAM
            clear_host_cache()
    texts: list[str] = []
    try:
        texts += _texts_of(lambda: hook.invoke("hello", {"name": "x"}))
        texts += _texts_of(lambda: hook.get_async_invocation("hello", "no-such-request"))
        texts += [str(hook.test_connection())]
        trigger = FunctionGraphInvokeTrigger(
            functiongraph_conn_id=conn_id,
            invocation=Invocation(function_urn=emu.urn("hello")).check().to_dict(),
        )
        texts += [json.dumps(run_trigger(trigger)), json.dumps(trigger.serialize())]
    finally:
        emu.set_token_ttl(86400.0)
    captured = capsys.readouterr()
    texts += [caplog.text, captured.out, captured.err, repr(hook), repr(hook.settings)]
    everything = "\n".join(texts)
    failure_marks = ("Retrying", "HTTP 401", "HTTP 503", "Connection broke", "Bad gateway")
    assert any(mark in everything for mark in failure_marks)  # a failure path ran and was captured
    for secret in secrets:
        assert secret not in everything
