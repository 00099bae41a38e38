"""
A wait that can never end fails at once (issue #22): before it starts an invocation it will wait for,
``InvokeFunctionAsyncOperator`` reads the function's async settings and fails, without invoking, when
async status persistence is off; the sensor does the same on its first check. A settings read that is
refused or fails only warns. Against the emulator over real sockets.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from airflow.sdk import Context

from airflow_provider_fgs.compat import TaskDeferred
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook
from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from airflow_provider_fgs.protocol import async_invoke_config
from airflow_provider_fgs.protocol.errors import AsyncStatusPersistenceDisabledError, AuthenticationError
from airflow_provider_fgs.sensors.functiongraph import FunctionGraphAsyncInvocationSensor
from tests.connections import ConnFactory, connection_factory

FAST = {"retry_attempts": 3, "retry_min_wait": 0.01, "retry_max_wait": 0.05, "read_timeout": 30}


class RecordingTaskInstance:
    dag_id, run_id, task_id, map_index, try_number = "dag", "run", "task", -1, 1
    start_date = None

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def _context(**extra: Any) -> tuple[Context, RecordingTaskInstance]:
    ti = RecordingTaskInstance()
    return cast("Context", {"ti": ti, **extra}), ti


@pytest.fixture
def make_conn(emu: Any, monkeypatch: pytest.MonkeyPatch) -> ConnFactory:
    return connection_factory(emu, monkeypatch, default_mode="aksk", prefix="fg_persistence", defaults=FAST)


def _waiting_operator(conn_id: str, function: str, **kwargs: Any) -> InvokeFunctionAsyncOperator:
    return InvokeFunctionAsyncOperator(
        task_id="start_and_wait",
        function_name=function,
        functiongraph_conn_id=conn_id,
        wait_for_completion=True,
        poll_interval=0.05,
        max_poll_interval=0.1,
        **kwargs,
    )


def _sensor(
    conn_id: str, function: str, request_id: str, **kwargs: Any
) -> FunctionGraphAsyncInvocationSensor:
    return FunctionGraphAsyncInvocationSensor(
        task_id="wait",
        request_id=request_id,
        function_name=function,
        functiongraph_conn_id=conn_id,
        poke_interval=0.05,
        **kwargs,
    )


# -- the operator ----------------------------------------------------------------------------------


@pytest.mark.parametrize("deferrable", [False, True])
def test_operator_fails_before_invoking_when_persistence_is_off(
    emu: Any, make_conn: ConnFactory, deferrable: bool
) -> None:
    operator = _waiting_operator(make_conn(), "unrecorded", deferrable=deferrable)
    context, ti = _context()
    with pytest.raises(AsyncStatusPersistenceDisabledError) as caught:
        operator.execute(context)
    message = str(caught.value)
    for part in (
        emu.urn("unrecorded"),
        "Async status persistence is off",
        "enable_async_status_log",
        "The invocation was not started",
        "Configuration > Asynchronous Notification",
        "async-invoke-config",
    ):
        assert part in message
    assert emu.invocation_count("unrecorded") == 0
    assert emu.request_count("invoke_async") == 0
    assert emu.request_count("async_config") == 1
    assert ti.xcoms == {}


def test_with_persistence_on_it_waits_and_reads_the_settings_once_per_function(
    emu: Any, make_conn: ConnFactory
) -> None:
    conn_id = make_conn()
    first = _waiting_operator(conn_id, "noop").execute(_context()[0])
    by_urn = InvokeFunctionAsyncOperator(
        task_id="again", function_urn=emu.urn("noop"), functiongraph_conn_id=conn_id, wait_for_completion=True
    )
    second = by_urn.execute(_context()[0])
    assert (first["status"], second["status"]) == ("SUCCESS", "SUCCESS")
    assert emu.request_count("async_config") == 1  # one read per function and process
    deferring = _waiting_operator(conn_id, "noop", deferrable=True)
    with pytest.raises(TaskDeferred):
        deferring.execute(_context()[0])
    assert emu.request_count("async_config") == 1
    assert _waiting_operator(conn_id, "hello", payload={"name": "x"}).execute(_context()[0])["status"] == (
        "SUCCESS"
    )
    assert emu.request_count("async_config") == 2
    assert emu.invocation_count("noop") == 3


def test_without_waiting_no_settings_are_read(emu: Any, make_conn: ConnFactory) -> None:
    operator = InvokeFunctionAsyncOperator(
        task_id="start", function_name="unrecorded", functiongraph_conn_id=make_conn()
    )
    context, ti = _context()
    request_id = operator.execute(context)
    assert request_id == ti.xcoms["request_id"]
    assert emu.request_count("async_config") == 0
    assert emu.request_count("invoke_async") == 1


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("invalid_token", "HTTP 403 FSS.0403"),
        ("unavailable", "HTTP 503 FSS.0503"),
        ("drop", "Connection broke"),
    ],
)
def test_a_refused_or_failed_read_warns_and_goes_on(
    emu: Any, make_conn: ConnFactory, caplog: pytest.LogCaptureFixture, fault: str, reason: str
) -> None:
    emu.inject_fault(fault, count=None, function="noop", route="async_config")
    with caplog.at_level(logging.WARNING):
        record = _waiting_operator(make_conn(), "noop").execute(_context()[0])
    assert record["status"] == "SUCCESS"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    unreadable = [
        w for w in warnings if w.startswith(f"Could not read the async settings of {emu.urn('noop')}")
    ]
    assert len(unreadable) == 1, warnings
    assert reason in unreadable[0]
    assert "async status persistence" in unreadable[0]
    assert emu.invocation_count("noop") == 1


def test_a_route_the_platform_does_not_have_warns_and_goes_on(
    emu: Any, make_conn: ConnFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(async_invoke_config, "ASYNC_INVOKE_CONFIG_ACTION", "no-such-settings")
    with caplog.at_level(logging.WARNING):
        record = _waiting_operator(make_conn(), "noop").execute(_context()[0])
    assert record["status"] == "SUCCESS"
    assert "HTTP 404 APIG.0101" in caplog.text
    assert emu.request_count("unknown") == 1  # a 404 is not retried


def test_rejected_credentials_fail_before_invoking(emu: Any, make_conn: ConnFactory) -> None:
    operator = _waiting_operator(make_conn(password="wrong-secret"), "noop")
    with pytest.raises(AuthenticationError):
        operator.execute(_context()[0])
    assert emu.request_count("invoke_async") == 0


# -- the sensor ------------------------------------------------------------------------------------


def _started(conn_id: str, function: str) -> str:
    with FunctionGraphHook(conn_id) as hook:
        return hook.invoke_async(function, {})


def test_sensor_fails_on_its_first_poke_when_persistence_is_off(emu: Any, make_conn: ConnFactory) -> None:
    conn_id = make_conn()
    request_id = _started(conn_id, "unrecorded")
    with pytest.raises(AsyncStatusPersistenceDisabledError) as caught:
        _sensor(conn_id, "unrecorded", request_id).poke(_context()[0])
    assert f"Async invocation {request_id} may still run" in str(caught.value)
    assert "enable_async_status_log" in str(caught.value)
    assert emu.request_count("async_status") == 0  # failed before the first status query


def test_deferrable_sensor_fails_before_deferring(emu: Any, make_conn: ConnFactory) -> None:
    conn_id = make_conn()
    request_id = _started(conn_id, "unrecorded")
    with pytest.raises(AsyncStatusPersistenceDisabledError):
        _sensor(conn_id, "unrecorded", request_id, deferrable=True).execute(_context()[0])


def test_sensor_checks_only_its_first_poke(emu: Any, make_conn: ConnFactory) -> None:
    conn_id = make_conn()
    request_id = _started(conn_id, "sleep_shared")
    sensor = _sensor(conn_id, "sleep_shared", request_id)
    for _ in range(3):
        sensor.poke(_context()[0])
    assert emu.request_count("async_config") == 1
    assert emu.request_count("async_status") == 3


def test_a_rescheduled_poke_does_not_check_again(emu: Any, make_conn: ConnFactory) -> None:
    conn_id = make_conn()
    request_id = _started(conn_id, "unrecorded")
    sensor = _sensor(conn_id, "unrecorded", request_id, mode="reschedule")
    assert sensor.poke(_context(task_reschedule_count=1)[0]) is False  # not recorded yet, still waiting
    assert emu.request_count("async_config") == 0


# -- the hooks -------------------------------------------------------------------------------------


def test_the_async_hook_reads_the_same_settings_into_the_same_cache(emu: Any, make_conn: ConnFactory) -> None:
    conn_id = make_conn()

    async def read_twice() -> list[Any]:
        async with FunctionGraphAsyncHook(conn_id) as hook:
            return [await hook.aasync_invoke_config("unrecorded"), await hook.aasync_invoke_config("noop")]

    off, on = asyncio.run(read_twice())
    assert (off.enable_async_status_log, on.enable_async_status_log) == (False, True)
    assert off.func_urn == emu.urn("unrecorded")
    with FunctionGraphHook(conn_id) as hook:
        assert hook.async_invoke_config("noop") == on
    assert emu.request_count("async_config") == 2


def test_the_async_hook_warns_on_a_refused_read(
    emu: Any, make_conn: ConnFactory, caplog: pytest.LogCaptureFixture
) -> None:
    emu.inject_fault("invalid_token", count=None, function="noop", route="async_config")

    async def read() -> Any:
        async with FunctionGraphAsyncHook(make_conn()) as hook:
            return await hook.aasync_invoke_config("noop")

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(read()) is None
    assert f"Could not read the async settings of {emu.urn('noop')}" in caplog.text
