"""FunctionGraphHook against the emulator over loopback: auth, token lifecycle, retries, API calls."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import time
from typing import Any
from urllib.parse import quote

import pytest
import requests

from airflow_provider_fgs.client.retry import TransportError
from airflow_provider_fgs.client.tokens import TOKEN_CACHE
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.protocol.errors import (
    AuthenticationError,
    FunctionGraphApiError,
    InvalidRequestError,
    ServiceUnavailableError,
    ThrottledError,
)
from airflow_provider_fgs.protocol.iam import build_password_token_request, parse_token_response
from tests.conftest import clear_host_cache
from tests.connections import DEMO_USER, ConnFactory


def _hook(conn_id: str) -> FunctionGraphHook:
    return FunctionGraphHook(functiongraph_conn_id=conn_id)


# -- calls ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["password", "aksk"])
def test_invoke_returns_the_decoded_result_and_log(emu: Any, make_conn: ConnFactory, mode: str) -> None:
    hook = _hook(make_conn(mode))
    result = hook.invoke("hello", {"name": "Ada"})
    assert result.result["message"] == "Hello, Ada!"
    assert result.request_id == result.result["request_id"]
    assert result.log is not None
    assert "greeting Ada" in result.log
    assert not result.is_function_error
    assert emu.invocation_count("hello") == 1


def test_invoke_by_full_urn_and_v0(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk"))
    result = hook.invoke(emu.urn("hello"), {"name": "v0"}, request_version="v0", log_type=None)
    assert result.result["message"] == "Hello, v0!"
    assert result.log is None


def test_function_error_is_reported_not_raised(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk"))
    result = hook.invoke("divide", {"numerator": 1, "denominator": 0})
    assert result.is_function_error
    assert result.error_type == "ZeroDivisionError"
    assert emu.request_count("invoke") == 1  # a function error is never retried


def test_invalid_input_fails_before_any_request(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk"))
    with pytest.raises(InvalidRequestError, match="function name"):
        hook.invoke("9-not-a-name")
    with pytest.raises(InvalidRequestError, match="instance_memory"):
        hook.invoke("hello", instance_memory=100)
    with pytest.raises(InvalidRequestError, match="URN"):
        hook.invoke("urn:fss:broken")
    with pytest.raises(InvalidRequestError, match="not both"):
        hook.resolve_urn(emu.urn("hello"), qualifier="1")
    assert emu.request_count() == 0


def test_unknown_function_is_a_typed_platform_error(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk"))
    with pytest.raises(FunctionGraphApiError) as info:
        hook.invoke("no_such_function")
    assert info.value.http_status == 404
    assert emu.request_count("invoke") == 1


def test_async_invoke_and_status(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("password"))
    request_id = hook.invoke_async("hello", {"name": "later"})
    status = None
    for _ in range(200):
        status = hook.get_async_invocation("hello", request_id)
        if status is not None and not status.is_pending:
            break
        time.sleep(0.05)
    assert status is not None
    assert status.request_id == request_id
    assert status.is_success


def test_hook_reads_region_and_project_and_uses_one_session(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk"))
    assert (hook.region, hook.project_id) == (emu.region, emu.project_id)
    assert hook.get_conn() is hook.get_conn()
    hook.invoke("hello")
    hook.close()
    hook.invoke("hello")  # a new session after close


def test_project_id_is_learnt_from_a_token_scoped_by_project_name(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("password", project_id=None, project_name=emu.project_name))
    assert hook.project_id == emu.project_id
    assert hook.invoke("hello").result["message"] == "Hello, world!"


# -- token lifecycle --------------------------------------------------------------------------------


def test_token_fetched_once_for_many_calls_and_hooks(emu: Any, make_conn: ConnFactory) -> None:
    conn_id = make_conn("password")
    for _ in range(10):
        _hook(conn_id).invoke("hello")
    hook = _hook(conn_id)
    for _ in range(10):
        hook.invoke("hello")
    assert emu.invocation_count("hello") == 20
    assert emu.request_count("token") == 1


def test_parallel_first_calls_fetch_one_token(emu: Any, make_conn: ConnFactory) -> None:
    conn_id = make_conn("password")
    threads_count = 12
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            hook = _hook(conn_id)
            barrier.wait()
            hook.invoke("hello")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=call) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert emu.invocation_count("hello") == threads_count
    assert emu.request_count("token") == 1


def test_token_is_refreshed_before_it_expires(emu: Any, make_conn: ConnFactory) -> None:
    # 2 s, not 1 s: on a loaded machine, after the DAG tests, the first call sometimes took more than 1 s
    # from token to gateway and was rejected (401) before any refresh was due.
    emu.set_token_ttl(2.0)
    hook = _hook(make_conn("password"))
    hook.invoke("hello")
    assert emu.request_count("token") == 1
    time.sleep(1.6)  # past refresh_at (expiry minus a quarter of the lifetime: 1.5 s after issue)
    hook.invoke("hello")
    assert emu.request_count("token") == 2
    assert emu.request_count("invoke") == 2  # refreshed ahead, so no call was rejected


def test_revoked_token_is_refreshed_exactly_once(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("password"))
    hook.invoke("hello")
    emu.revoke_tokens()
    assert hook.invoke("hello").result["message"] == "Hello, world!"
    assert emu.request_count("token") == 2
    assert emu.request_count("invoke") == 3  # ok, rejected (401), retried with the new token
    assert emu.invocation_count("hello") == 2


def test_revoked_pre_issued_token_fails_without_refresh(emu: Any, make_conn: ConnFactory) -> None:
    request = build_password_token_request(
        emu.url,
        domain_name=DEMO_USER[0],
        user_name=DEMO_USER[1],
        password=DEMO_USER[2],
        project_id=emu.project_id,
    )
    response = requests.post(request.url, data=request.body, headers=request.headers, timeout=10)
    token = parse_token_response(response.status_code, response.headers, response.content)
    hook = _hook(make_conn("token", token=token.value))
    assert hook.invoke("hello").result["message"] == "Hello, world!"
    ok, message = hook.test_connection()
    assert ok, message
    assert "accepted the pre-issued token" in message
    emu.revoke_tokens()
    emu.reset_stats()
    with pytest.raises(AuthenticationError, match="pre-issued token was rejected") as info:
        hook.invoke("hello")
    assert info.value.http_status == 401
    assert emu.request_count("invoke") == 1
    assert emu.request_count("token") == 0


def test_wrong_password_is_a_clear_error_without_retries(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("password", password="wrong-password-value"))
    with pytest.raises(AuthenticationError) as info:
        hook.invoke("hello")
    message = str(info.value)
    conn_id = hook.functiongraph_conn_id
    assert (
        f"IAM rejected IAM user 'demo-user' of domain 'demo-domain' (connection {conn_id!r}): HTTP 401"
        in message
    )
    assert "wrong-password-value" not in message
    assert emu.request_count("token") == 1
    assert emu.request_count("invoke") == 0
    # the failure is not cached as a token: without a cool-down, a second call asks IAM again, once
    hook = _hook(make_conn("password", password="wrong-password-value", credential_cooldown=0))
    with pytest.raises(AuthenticationError):
        hook.invoke("hello")
    assert emu.request_count("token") == 2


def test_wrong_secret_key_is_rejected_once(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk", password="not-the-secret-key"))
    with pytest.raises(AuthenticationError) as info:
        hook.invoke("hello")
    assert info.value.http_status == 401
    message = str(info.value)
    assert "signature was rejected" in message
    assert f"access key DEMOACCESSKEY (connection {hook.functiongraph_conn_id!r})" in message
    assert "not-the-secret-key" not in message
    assert emu.request_count("invoke") == 1
    assert emu.invocation_count() == 0


# -- retries ----------------------------------------------------------------------------------------


def test_throttled_then_success(emu: Any, make_conn: ConnFactory, caplog: pytest.LogCaptureFixture) -> None:
    hook = _hook(make_conn("password"))
    emu.inject_fault("throttle", count=2, function="hello")
    with caplog.at_level(logging.WARNING):
        assert hook.invoke("hello").result["message"] == "Hello, world!"
    assert emu.request_count("invoke") == 3
    assert emu.invocation_count("hello") == 1
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying invoke of")]
    assert len(retries) == 2
    assert "ThrottledError" in retries[0]
    assert "HTTP 429 FSS.0429" in retries[0]
    # The first attempt runs outside tenacity; the numbering and the budget carry on inside it.
    numbers = [re.search(r"\(attempt (\d+) of (\d+) failed\)", message) for message in retries]
    assert [(m[1], m[2]) for m in numbers if m] == [
        ("1", str(hook.settings.retry.attempts + 1)),
        ("2", str(hook.settings.retry.attempts + 1)),
    ]


def test_retry_after_is_honoured(emu: Any, make_conn: ConnFactory, caplog: pytest.LogCaptureFixture) -> None:
    hook = _hook(make_conn("aksk"))
    emu.inject_fault("throttle", count=1, retry_after=0.3)
    with caplog.at_level(logging.WARNING):
        hook.invoke("hello")
    delays = [
        float(match[1])
        for r in caplog.records
        if (match := re.search(r"Retrying .* in ([0-9.]+) s", r.getMessage()))
    ]
    assert len(delays) == 1
    assert delays[0] >= 0.3  # above the 0.05 s backoff cap of the test connection


def test_unavailable_is_not_re_sent_for_a_sync_invocation(emu: Any, make_conn: ConnFactory) -> None:
    # FunctionGraph documents FSS.0503 only as "service unavailable": no proof the function did not run.
    hook = _hook(make_conn("aksk", retry_attempts=2))
    emu.inject_fault("unavailable", count=None, function="hello")
    with pytest.raises(ServiceUnavailableError) as info:
        hook.invoke("hello")
    assert info.value.http_status == 503
    assert info.value.error_code == "FSS.0503"
    assert info.value.request_id
    assert emu.request_count("invoke") == 1
    assert emu.invocation_count() == 0


def test_unavailable_is_re_sent_until_exhausted_with_retry_sync_invoke(
    emu: Any, make_conn: ConnFactory
) -> None:
    hook = _hook(make_conn("aksk", retry_attempts=2, retry_sync_invoke=True))
    emu.inject_fault("unavailable", count=None, function="hello")
    with pytest.raises(ServiceUnavailableError) as info:
        hook.invoke("hello")
    assert info.value.http_status == 503
    assert emu.request_count("invoke") == 3
    assert emu.invocation_count() == 0


def test_throttled_exhaustion_raises_throttled_error(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk", retry_attempts=1))
    emu.inject_fault("throttle", count=None)
    with pytest.raises(ThrottledError):
        hook.invoke("hello")
    assert emu.request_count("invoke") == 2


def test_no_retry_budget_means_one_attempt(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk", retry_attempts=0))
    emu.inject_fault("throttle", count=1)
    with pytest.raises(ThrottledError):
        hook.invoke("hello")
    assert emu.request_count("invoke") == 1


def test_dropped_sync_invoke_is_not_resent(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk"))
    emu.inject_fault("drop", count=1, function="hello")
    with pytest.raises(TransportError) as info:
        hook.invoke("hello")
    assert info.value.request_sent is None
    assert emu.request_count("invoke") == 1


def test_dropped_sync_invoke_is_resent_when_opted_in(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk", retry_sync_invoke=True))
    emu.inject_fault("drop", count=1, function="hello")
    assert hook.invoke("hello").result["message"] == "Hello, world!"
    assert emu.request_count("invoke") == 2


def test_dropped_status_query_is_retried(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk"))
    emu.inject_fault("drop", count=1, route="async_status")
    assert hook.get_async_invocation("hello", "no-such-request") is None
    assert emu.request_count("async_status") == 2


def test_read_timeout_of_sync_invoke_is_not_retried(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk"))
    emu.inject_fault("latency", count=1, delay=0.5, function="hello")
    with pytest.raises(TransportError, match="read timeout") as info:
        hook.invoke("hello", timeout=0.1)
    assert info.value.request_sent is True
    assert "The call was not re-sent" in str(info.value)
    assert "retry_sync_invoke" in str(info.value)
    assert emu.request_count("invoke") == 1


def test_read_timeout_of_an_idempotent_call_makes_no_resend_note(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk", retry_sync_invoke=True, retry_attempts=1))
    emu.inject_fault("latency", count=2, delay=0.5, function="hello")
    with pytest.raises(TransportError, match="read timeout") as info:
        hook.invoke("hello", timeout=0.1)
    assert "not re-sent" not in str(info.value)
    assert emu.request_count("invoke") == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_retried_then_raised(
    emu: Any, make_conn: ConnFactory, caplog: pytest.LogCaptureFixture
) -> None:
    hook = _hook(make_conn("aksk", endpoint=f"http://127.0.0.1:{_closed_port()}", retry_attempts=2))
    with caplog.at_level(logging.WARNING), pytest.raises(TransportError, match="Could not connect") as info:
        hook.invoke("hello")
    assert info.value.request_sent is False
    assert sum("Retrying invoke of" in r.getMessage() for r in caplog.records) == 2


# -- test_connection --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["password", "aksk"])
def test_test_connection_succeeds(emu: Any, make_conn: ConnFactory, mode: str) -> None:
    ok, message = _hook(make_conn(mode)).test_connection()
    assert ok, message
    assert ("IAM issued a token" if mode == "password" else "accepted access key DEMOACCESSKEY") in message


def test_test_connection_signed_read_call(emu: Any, make_conn: ConnFactory) -> None:
    _hook(make_conn("aksk")).test_connection()
    assert emu.request_count("list") == 1


@pytest.mark.parametrize(
    ("mode", "overrides", "expected"),
    [
        ("password", {"password": "bad-password-123"}, "IAM rejected IAM user 'demo-user'"),
        ("aksk", {"password": "bad-secret-123"}, "HTTP 401"),
        ("aksk", {"region": None}, "extra 'region' is required"),
        ("aksk", {"endpoint": "http://127.0.0.1:1", "retry_attempts": 0}, "Could not connect"),
    ],
)
def test_test_connection_reports_failures(
    emu: Any, make_conn: ConnFactory, mode: str, overrides: dict[str, Any], expected: str
) -> None:
    password = overrides.pop("password", None)
    ok, message = _hook(make_conn(mode, password=password, **overrides)).test_connection()
    assert not ok
    assert expected in message
    if password:
        assert password not in message


def test_connection_from_uri_form(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    host = emu.url.split("://", 1)[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_FG_URI",
        f"functiongraph://DEMOACCESSKEY:demo-secret-key@{host}/?region={emu.region}"
        f"&project_id={emu.project_id}&iam_endpoint={quote(emu.url, safe='')}",
    )
    settings = _hook("fg_uri").settings
    assert (settings.endpoint, settings.iam_endpoint) == (f"https://{host}", emu.url)
    assert settings.auth_type == "aksk"
    monkeypatch.setenv(
        "AIRFLOW_CONN_FG_URI",
        json.dumps(
            {
                "conn_type": "functiongraph",
                "login": "DEMOACCESSKEY",
                "password": "demo-secret-key",
                "host": emu.url,
                "extra": {"region": emu.region, "project_id": emu.project_id},
            }
        ),
    )
    assert _hook("fg_uri").invoke("hello").result["message"] == "Hello, world!"


def test_token_cache_is_keyed_by_credentials(emu: Any, make_conn: ConnFactory) -> None:
    _hook(make_conn("password")).invoke("hello")
    _hook(make_conn("password")).invoke("hello")  # another connection id, same credentials: shared
    assert emu.request_count("token") == 1
    TOKEN_CACHE.clear()
    _hook(make_conn("password")).invoke("hello")
    assert emu.request_count("token") == 1  # a new process: the host cache still has it
    TOKEN_CACHE.clear()
    clear_host_cache()
    _hook(make_conn("password")).invoke("hello")
    assert emu.request_count("token") == 2


def test_agency_token_is_assumed_with_the_password_token(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("password", agency_name="ops-agency"))
    assert hook.invoke("hello").result["message"] == "Hello, world!"
    hook.invoke("hello")
    assert emu.request_count("token") == 2  # the user's token, then the agency token; both once
    assert hook.settings.agency_domain_name == DEMO_USER[0]


def test_unreachable_iam_is_retried_by_one_loop_only(
    emu: Any, make_conn: ConnFactory, caplog: pytest.LogCaptureFixture
) -> None:
    hook = _hook(make_conn("password", iam_endpoint=f"http://127.0.0.1:{_closed_port()}", retry_attempts=2))
    with caplog.at_level(logging.WARNING), pytest.raises(TransportError, match="Could not connect"):
        hook.invoke("hello")
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert len(retries) == 2  # the token fetch's own loop; the invoke loop does not multiply it
    assert all(message.startswith("Retrying IAM token request") for message in retries)
    assert emu.request_count("invoke") == 0


# -- naming the function as the operator does -------------------------------------------------------


def test_invoke_names_the_function_as_the_operator_does(emu: Any, make_conn: ConnFactory) -> None:
    hook = _hook(make_conn("aksk"))
    by_name = hook.invoke(function_name="hello", payload={"name": "n"})
    by_parts = hook.invoke(
        function_name="hello", package="default", qualifier="latest", payload={"name": "p"}
    )
    by_urn = hook.invoke(function_urn=emu.urn("hello"), payload={"name": "u"})
    positional = hook.invoke(emu.urn("hello"), {"name": "pos"})
    assert [r.result["message"] for r in (by_name, by_parts, by_urn, positional)] == [
        "Hello, n!",
        "Hello, p!",
        "Hello, u!",
        "Hello, pos!",
    ]
    assert {r.function for r in (by_name, by_parts, by_urn, positional)} == {emu.urn("hello")}
    assert emu.invocation_count("hello") == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "Give the function to invoke"),
        (
            {"function_urn": "urn:fss:x", "function_name": "hello"},
            "function_urn='urn:fss:x'.*function_name='hello'",
        ),
        ({"function_urn": "urn:fss:x", "qualifier": "1"}, r"qualifier='1'.*not both"),
        ({"function_name": "hello", "qualifier": "1", "alias": "prod"}, "qualifier='1' or alias='prod'"),
    ],
)
def test_invoke_refuses_conflicting_names_before_any_request(
    emu: Any, make_conn: ConnFactory, kwargs: dict[str, Any], message: str
) -> None:
    hook = _hook(make_conn("aksk"))
    with pytest.raises(InvalidRequestError, match=message):
        hook.invoke(payload={}, **kwargs)
    assert emu.request_count() == 0


def test_ainvoke_names_the_function_as_the_operator_does(emu: Any, make_conn: ConnFactory) -> None:
    import asyncio

    from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook

    async def call() -> Any:
        async with FunctionGraphAsyncHook(make_conn("aksk")) as hook:
            return await hook.ainvoke(function_name="hello", qualifier="latest", payload={"name": "a"})

    result = asyncio.run(call())
    assert result.result["message"] == "Hello, a!"
    assert result.function == emu.urn("hello")


def test_raise_for_function_error_raises_what_the_operator_raises(emu: Any, make_conn: ConnFactory) -> None:
    from airflow_provider_fgs.protocol.errors import FunctionError

    hook = _hook(make_conn("aksk"))
    hook.invoke(function_name="hello", payload={"name": "ok"}).raise_for_function_error()  # no error
    result = hook.invoke(function_name="divide", payload={"numerator": 1, "denominator": 0})
    with pytest.raises(FunctionError) as caught:
        result.raise_for_function_error()
    error = caught.value
    assert str(error) == str(result.to_function_error(emu.urn("divide")))
    assert str(error).startswith(f"Function {emu.urn('divide')} failed: ZeroDivisionError: ")
    assert error.request_id == result.request_id
    assert "dividing 1 by 0" in (error.log or "")


def test_the_triggers_of_a_process_read_their_connection_once_until_it_is_refused(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A triggerer runs many triggers of one connection: each read is a request to its supervisor."""
    from airflow_provider_fgs.hooks import functiongraph_async
    from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook
    from airflow_provider_fgs.protocol.errors import AuthenticationError

    reads: list[str] = []
    real = FunctionGraphAsyncHook.get_connection

    def counted(conn_id: str) -> Any:
        reads.append(conn_id)
        return real(conn_id)

    monkeypatch.setattr(FunctionGraphAsyncHook, "get_connection", staticmethod(counted))
    conn = {
        "conn_type": "functiongraph",
        "login": "DEMOACCESSKEY",
        "password": "demo-secret-key",
        "extra": {
            "region": emulator.region,
            "project_id": emulator.project_id,
            "endpoint": emulator.url,
            "credential_cooldown": 0,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_FGS_CACHED", json.dumps(conn))

    async def invoke() -> Any:
        async with FunctionGraphAsyncHook("fgs_cached") as hook:
            return await hook.ainvoke("hello", {"name": "Ada"})

    async def together() -> list[Any]:
        return await asyncio.gather(*(invoke() for _ in range(5)))

    assert [result.result["message"] for result in asyncio.run(together())] == ["Hello, Ada!"] * 5
    for _ in range(3):
        assert asyncio.run(invoke()).result["message"] == "Hello, Ada!"
    assert reads == ["fgs_cached"]  # eight triggers (five started together), one read

    monkeypatch.setenv("AIRFLOW_CONN_FGS_CACHED", json.dumps({**conn, "password": "a-wrong-secret"}))
    assert asyncio.run(invoke()).result["message"] == "Hello, Ada!"  # the rotation is seen within the TTL
    monkeypatch.setattr(functiongraph_async, "CONNECTION_TTL_S", 0.0)
    with pytest.raises(AuthenticationError):
        asyncio.run(invoke())  # read again after the TTL: the new (wrong) secret is refused
    monkeypatch.setattr(functiongraph_async, "CONNECTION_TTL_S", 30.0)
    monkeypatch.setenv("AIRFLOW_CONN_FGS_CACHED", json.dumps(conn))
    assert asyncio.run(invoke()).result["message"] == "Hello, Ada!"  # a refusal forgets it: read again
    assert reads == ["fgs_cached"] * 3
