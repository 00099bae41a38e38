"""
The provider under injected faults: the sync hook, the operator, and the deferrable path (trigger +
``execute_complete``), against the emulator over loopback.

Already covered elsewhere (not repeated here):
``tests/hooks/test_functiongraph_hook.py``: read timeout not retried
(``test_read_timeout_of_sync_invoke_is_not_retried``), 429 then success, Retry-After in the logged
delay, 503 not re-sent, and re-sent until exhausted with ``retry_sync_invoke``
(``test_unavailable_is_re_sent_until_exhausted_with_retry_sync_invoke``), drop before the function
runs (re-sent only when opted in), revoked token refreshed once
(``test_revoked_token_is_refreshed_exactly_once``), wrong SK rejected once
(``test_wrong_secret_key_is_rejected_once``), unreachable IAM retried by one loop
(``test_unreachable_iam_is_retried_by_one_loop_only``); ``tests/triggers/test_functiongraph.py``:
throttling, read timeout and a wrong password through the trigger.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fgs.client.retry import TransportError
from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.protocol.errors import (
    AuthenticationError,
    ServiceUnavailableError,
    ThrottledError,
    error_from_event,
)
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.triggers.functiongraph import FunctionGraphInvokeTrigger
from tests.operators.test_invoke_function_operator import make_context
from tests.reliability.conftest import Connect
from tests.triggering import run_trigger


def invoke_trigger(conn_id: str, emu: Any, name: str, payload: Any = None, **kwargs: Any) -> dict[str, Any]:
    invocation = Invocation(function_urn=emu.urn(name), payload=payload, **kwargs).check()
    return run_trigger(
        FunctionGraphInvokeTrigger(functiongraph_conn_id=conn_id, invocation=invocation.to_dict())
    )


def wait_for_invocations(emu: Any, function: str, expected: int, timeout: float = 10.0) -> int:
    """The invocation count once it reaches ``expected`` (a slow call still runs after the client left)."""
    deadline = time.monotonic() + timeout
    while emu.invocation_count(function) < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # and no more arrive
    return int(emu.invocation_count(function))


# -- latency beyond the read timeout -----------------------------------------------------------------


def test_read_timeout_runs_the_function_once_and_names_the_timeout(emu: Any, connect: Connect) -> None:
    hook = FunctionGraphHook(connect("aksk"))
    with pytest.raises(TransportError, match="No answer within the read timeout") as info:
        hook.invoke("sleep", {"seconds": 0.6}, timeout=0.2)
    assert info.value.request_sent is True
    assert "sleep" in str(info.value)
    assert emu.request_count("invoke") == 1
    assert wait_for_invocations(emu, "sleep", 1) == 1  # the function ran once; nothing was re-sent


@pytest.fixture(scope="module")
def sleep_once_emulator() -> Iterator[FunctionGraphEmulator]:
    """An emulator serving ``sleep_once`` (slow on its first call only, so a re-sent call can succeed)."""
    with FunctionGraphEmulator(Path(__file__).parent / "functions", prestart_workers=1) as emulator:
        yield emulator


def test_read_timeout_is_retried_only_when_opted_in_and_then_runs_twice(
    emu: Any, connect: Connect, sleep_once_emulator: FunctionGraphEmulator, tmp_path: Path
) -> None:
    marker = tmp_path / "slow-once"
    marker.touch()
    event = {"marker": str(marker), "seconds": 2.0}
    hook = FunctionGraphHook(connect("aksk", on=sleep_once_emulator, retry_sync_invoke=True))
    # 1 s leaves the re-sent call time for a fresh worker on a loaded machine; the first call needs 2 s.
    assert hook.invoke("sleep_once", event, timeout=1.0).result == {"slow": False}
    assert sleep_once_emulator.request_count("invoke") == 2
    # The reason the default is off: the first, timed-out request ran the function too.
    assert sleep_once_emulator.invocation_count("sleep_once") == 2
    assert not marker.exists()


# -- 429 bursts: backoff, Retry-After honoured --------------------------------------------------------


def test_throttle_burst_waits_at_least_retry_after_each_time(
    emu: Any, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    hook = FunctionGraphHook(connect("aksk"))
    emu.inject_fault("throttle", count=3, function="hello", retry_after=0.25)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        assert hook.invoke("hello").result["message"] == "Hello, world!"
    elapsed = time.monotonic() - started
    delays = [
        float(m[1]) for r in caplog.records if (m := re.search(r"Retrying .* in ([0-9.]+) s", r.getMessage()))
    ]
    assert len(delays) == 3
    assert all(delay >= 0.25 for delay in delays)  # above the connection's 0.2 s backoff cap
    assert elapsed >= 3 * 0.25 * 0.9  # lower bound only (timer granularity); no upper bound
    assert emu.request_count("invoke") == 4
    assert emu.invocation_count("hello") == 1


def test_throttle_burst_through_the_trigger_honours_retry_after(emu: Any, connect: Connect) -> None:
    conn_id = connect("aksk")
    emu.inject_fault("throttle", count=2, function="square", retry_after=0.25)
    started = time.monotonic()
    event = invoke_trigger(conn_id, emu, "square", {"x": 3})
    elapsed = time.monotonic() - started
    assert event["status"] == "success"
    assert json.loads(event["result"]["raw_result"])["square"] == 9
    assert elapsed >= 2 * 0.25 * 0.9
    assert emu.request_count("invoke") == 3
    assert emu.invocation_count("square") == 1


# -- 503 past the retry budget ------------------------------------------------------------------------


def test_unavailable_through_the_trigger_is_not_re_sent(emu: Any, connect: Connect) -> None:
    conn_id = connect("aksk", retry_attempts=2)
    emu.inject_fault("unavailable", count=None, function="square")
    event = invoke_trigger(conn_id, emu, "square", {"x": 1})
    error = error_from_event(event["error"])
    assert isinstance(error, ServiceUnavailableError)
    assert error.http_status == 503
    assert emu.request_count("invoke") == 1


def test_unavailable_past_the_budget_through_the_trigger_keeps_the_request_id(
    emu: Any, connect: Connect
) -> None:
    conn_id = connect("aksk", retry_attempts=2, retry_sync_invoke=True)  # 503 is re-sent only so
    emu.inject_fault("unavailable", count=None, function="square")
    event = invoke_trigger(conn_id, emu, "square", {"x": 1})
    assert event["status"] == "error"
    error = error_from_event(event["error"])
    assert isinstance(error, ServiceUnavailableError)
    assert (error.http_status, error.error_code) == (503, "FSS.0503")
    assert error.request_id
    assert error.request_id in str(error)
    assert emu.request_count("invoke") == 3
    assert emu.invocation_count() == 0
    operator = InvokeFunctionOperator(task_id="square", function_name="square", do_xcom_push=False)
    with pytest.raises(ServiceUnavailableError) as info:
        operator.execute_complete({}, event)  # type: ignore[arg-type]
    assert info.value.request_id == error.request_id


# -- connection dropped mid-response (status line and headers sent, body cut) ---------------------------


def test_cut_response_of_a_sync_invoke_is_a_clear_error_and_not_resent(emu: Any, connect: Connect) -> None:
    hook = FunctionGraphHook(connect("aksk"))
    emu.inject_fault("truncate", count=1, function="hello")
    with pytest.raises(TransportError, match=r"Connection broke during POST .*may have reached") as info:
        hook.invoke("hello")
    assert info.value.request_sent is None
    assert emu.request_count("invoke") == 1
    assert emu.invocation_count("hello") == 1


def test_cut_response_is_resent_when_opted_in(emu: Any, connect: Connect) -> None:
    hook = FunctionGraphHook(connect("aksk", retry_sync_invoke=True))
    emu.inject_fault("truncate", count=1, function="hello")
    assert hook.invoke("hello").result["message"] == "Hello, world!"
    assert emu.request_count("invoke") == 2
    assert emu.invocation_count("hello") == 2


def test_cut_response_of_an_idempotent_query_is_retried(emu: Any, connect: Connect) -> None:
    hook = FunctionGraphHook(connect("aksk"))
    emu.inject_fault("truncate", count=1, route="async_status")
    assert hook.get_async_invocation("hello", "no-such-request") is None
    assert emu.request_count("async_status") == 2


def test_cut_response_through_the_trigger_is_an_error_event_and_not_resent(
    emu: Any, connect: Connect
) -> None:
    conn_id = connect("aksk")
    emu.inject_fault("truncate", count=1, function="square")
    event = invoke_trigger(conn_id, emu, "square", {"x": 2})
    assert event["status"] == "error"
    error = error_from_event(event["error"])
    assert isinstance(error, ServiceUnavailableError)
    assert "Connection broke" in str(error)
    assert emu.request_count("invoke") == 1


# -- malformed, non-JSON, non-UTF-8 answer to a v1 invoke ----------------------------------------------
# Lenient by design: the response version of real FunctionGraph is unverified (PROTOCOL.md), so a body
# that is not a v1 envelope is taken as the raw result (bytes that are not UTF-8 become U+FFFD); the
# request id and the log still come from the headers. A caller that expects JSON sees a string.


def test_garbage_v1_body_is_returned_as_the_raw_result(emu: Any, connect: Connect) -> None:
    hook = FunctionGraphHook(connect("aksk"))
    emu.inject_fault("garbage", count=1, function="hello")
    result = hook.invoke("hello", {"name": "Ada"})
    assert isinstance(result.result, str)
    assert result.result == result.raw_result
    assert "Bad gateway \ufffd" in result.raw_result
    assert not result.is_function_error
    assert result.request_id
    assert "greeting Ada" in (result.log or "")
    assert emu.request_count("invoke") == 1


def test_garbage_body_lets_the_task_succeed_with_the_text_on_both_paths(
    emu: Any, connect: Connect, capsys: pytest.CaptureFixture[str]
) -> None:
    conn_id = connect("aksk")
    operator = InvokeFunctionOperator(task_id="hello", function_name="hello", functiongraph_conn_id=conn_id)
    emu.inject_fault("garbage", count=1, function="hello")
    context, ti = make_context()
    sync_result = operator.execute(context)
    emu.inject_fault("garbage", count=1, function="hello")
    event = invoke_trigger(conn_id, emu, "hello")
    deferred_result = operator.execute_complete(context, event)
    for result in (sync_result, deferred_result):
        assert isinstance(result, str)
        assert "Bad gateway" in result
    assert ti.xcoms["request_id"]
    assert "succeeded" in capsys.readouterr().out


# -- truncated / invalid base64 log header ----------------------------------------------------------------


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_undecodable_log_header_warns_and_the_task_succeeds(
    emu: Any, connect: Connect, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    conn_id = connect("aksk")
    operator = InvokeFunctionOperator(
        task_id="square", function_name="square", payload={"x": 6}, functiongraph_conn_id=conn_id
    )
    context, ti = make_context()
    emu.inject_fault("bad_log", count=1, function="square")
    if deferrable:
        result = operator.execute_complete(context, invoke_trigger(conn_id, emu, "square", {"x": 6}))
    else:
        result = operator.execute(context)
    assert result == {"x": 6, "square": 36}
    assert ti.xcoms["log"] is None  # marked undecodable: not shown, not guessed
    out = capsys.readouterr().out
    warning = next(line for line in out.splitlines() if "could not be decoded" in line)
    assert "warning" in warning.lower()
    assert ti.xcoms["request_id"] in warning
    assert "squaring 6" not in out


# -- token revoked mid-run ---------------------------------------------------------------------------------


def test_revoked_token_is_refreshed_once_by_the_trigger(emu: Any, connect: Connect) -> None:
    conn_id = connect("password")
    assert invoke_trigger(conn_id, emu, "square", {"x": 2})["status"] == "success"
    emu.revoke_tokens()
    event = invoke_trigger(conn_id, emu, "square", {"x": 3})
    assert event["status"] == "success"
    assert json.loads(event["result"]["raw_result"])["square"] == 9
    assert emu.request_count("token") == 2
    assert emu.request_count("invoke") == 3  # ok; rejected (401) then re-sent with the new token
    assert emu.invocation_count("square") == 2


def test_token_revoked_again_after_the_refresh_fails_without_a_loop(emu: Any, connect: Connect) -> None:
    hook = FunctionGraphHook(connect("password"))
    hook.invoke("hello")
    emu.revoke_tokens()
    # Every token is refused from now on: a refresh happens once, then the call fails.
    emu.set_token_ttl(0.0)
    try:
        with pytest.raises(AuthenticationError, match="freshly fetched token was rejected too"):
            hook.invoke("hello")
    finally:
        emu.set_token_ttl(86400.0)
    assert emu.request_count("token") == 2
    assert emu.request_count("invoke") == 3
    assert emu.invocation_count() == 1


# -- IAM down ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("unavailable", ServiceUnavailableError, "HTTP 503 FSS.0503"),
        ("throttle", ThrottledError, "HTTP 429 FSS.0429"),
        ("drop", TransportError, "Connection broke"),
    ],
)
def test_iam_down_fails_clearly_after_bounded_attempts(
    emu: Any, connect: Connect, kind: str, error: type[Exception], message: str
) -> None:
    hook = FunctionGraphHook(connect("password", retry_attempts=2))
    emu.inject_fault(kind, count=None, route="token")  # type: ignore[arg-type]
    with pytest.raises(error, match=message) as info:
        hook.invoke("hello")
    text = str(info.value)
    assert (
        "IAM token request for IAM user 'demo-user'" in text or "POST " + emu.url + "/v3/auth/tokens" in text
    )
    assert (
        emu.request_count("token") == 3
    )  # the first attempt and two retries, not multiplied by the invoke loop
    assert emu.request_count("invoke") == 0
    emu.clear_faults()  # IAM is back: the failure was not cached
    assert hook.invoke("hello").result["message"] == "Hello, world!"
    assert emu.request_count("token") == 4


def test_iam_down_through_the_trigger_is_a_typed_error_event(emu: Any, connect: Connect) -> None:
    conn_id = connect("password", retry_attempts=2)
    emu.inject_fault("unavailable", count=None, route="token")
    event = invoke_trigger(conn_id, emu, "square", {"x": 2})
    assert event["status"] == "error"
    error = error_from_event(event["error"])
    assert isinstance(error, ServiceUnavailableError)
    assert error.http_status == 503
    assert emu.request_count("token") == 3
    assert emu.request_count("invoke") == 0


# -- AK/SK rejected: never retried (five failures lock a real key for 5 minutes) ---------------------------


@pytest.mark.parametrize(
    ("login", "password"),
    [("DEMOACCESSKEY", "not-the-secret-key"), ("UNKNOWNACCESSKEY", "demo-secret-key")],
    ids=["wrong-sk", "unknown-ak"],
)
@pytest.mark.parametrize("path", ["hook", "trigger"])
def test_rejected_access_key_reaches_the_gateway_exactly_once(
    emu: Any, connect: Connect, login: str, password: str, path: str
) -> None:
    conn_id = connect("aksk", login=login, password=password, retry_attempts=4)
    if path == "hook":
        with pytest.raises(AuthenticationError) as info:
            FunctionGraphHook(conn_id).invoke("hello")
        rejected: Exception = info.value
    else:
        event = invoke_trigger(conn_id, emu, "hello")
        assert event["status"] == "error"
        rejected = error_from_event(event["error"])
        assert isinstance(rejected, AuthenticationError)
    assert "HTTP 401 APIG.0301" in str(rejected)
    assert password not in str(rejected)
    assert emu.request_count() == 1
    assert emu.invocation_count() == 0
