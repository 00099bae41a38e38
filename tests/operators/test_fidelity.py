"""
The provider against the real FunctionGraph's limits (issue 11), through the hook, the operators, the
sensor and the trigger, against emulators configured like the real service.

- an async job whose record has left the default one-hour window still ends correctly;
- a job on a function without async status persistence fails with a clear error instead of hanging
  (at once when its async settings say so: tests/operators/test_async_status_persistence.py; here,
  where they cannot be read, once its record stays missing);
- a synchronous call cut by the gateway fails clearly, is not re-sent, and the function runs on;
- a token refused as 403 FSS.0403 "invalid token" is refreshed once, as after a 401.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from airflow.sdk import Context

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook
from airflow_provider_fgs.operators.async_invocation import XCOM_QUERY_BEGIN_TIME, InvokeFunctionAsyncOperator
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.protocol.errors import (
    AsyncRecordNotFoundError,
    FunctionError,
    ServiceUnavailableError,
)
from airflow_provider_fgs.sensors.functiongraph import FunctionGraphAsyncInvocationSensor
from airflow_provider_fgs.triggers.functiongraph import FunctionGraphAsyncInvocationTrigger
from tests.conftest import FUNCTION_DIRS
from tests.connections import ConnFactory, connection_factory
from tests.triggering import run_trigger

FAST = {"retry_attempts": 3, "retry_min_wait": 0.01, "retry_max_wait": 0.05, "read_timeout": 30}


class RecordingTaskInstance:
    dag_id, run_id, task_id, map_index, try_number = "dag", "run", "invoke", -1, 1

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def _context() -> tuple[Context, RecordingTaskInstance]:
    ti = RecordingTaskInstance()
    return cast("Context", {"ti": ti}), ti


@pytest.fixture
def make_conn(emu: Any, monkeypatch: pytest.MonkeyPatch) -> ConnFactory:
    return connection_factory(emu, monkeypatch, default_mode="aksk", prefix="fg_fidelity", defaults=FAST)


@pytest.fixture
def short_window() -> Iterator[FunctionGraphEmulator]:
    """Status queries without query_begin_time look back only 0.5 s (the real service: one hour)."""
    with FunctionGraphEmulator(FUNCTION_DIRS, prestart_workers=1, async_query_window=0.5) as emu:
        yield emu


@pytest.fixture
def short_gateway() -> Iterator[FunctionGraphEmulator]:
    """Synchronous answers are cut after 1 s (the real gateway: 90 s)."""
    with FunctionGraphEmulator(FUNCTION_DIRS, prestart_workers=1, gateway_timeout=1.0) as emu:
        yield emu


# -- async status: the query window --------------------------------------------------------------


def test_async_job_past_the_default_window_ends_correctly(
    short_window: FunctionGraphEmulator, make_conn: ConnFactory
) -> None:
    conn_id = make_conn(on=short_window)
    operator = InvokeFunctionAsyncOperator(
        task_id="start_and_wait",
        function_name="sleep",
        payload={"seconds": 1.5},
        functiongraph_conn_id=conn_id,
        wait_for_completion=True,
        poll_interval=0.2,
        max_poll_interval=0.3,
        missing_record_timeout=30,
    )
    context, ti = _context()
    record = operator.execute(context)
    assert record["status"] == "SUCCESS"
    assert ti.xcoms[XCOM_QUERY_BEGIN_TIME]
    # The record is there, but only a query from the job's start finds it: without one it is "missing".
    with FunctionGraphHook(conn_id) as hook:
        assert hook.get_async_invocation("sleep", record["request_id"]) is None
        found = hook.get_async_invocation(
            "sleep", record["request_id"], query_begin_time=ti.xcoms[XCOM_QUERY_BEGIN_TIME]
        )
    assert found is not None
    assert found.status == "SUCCESS"


def test_sensor_searches_from_the_dag_runs_start(
    short_window: FunctionGraphEmulator, make_conn: ConnFactory
) -> None:
    conn_id = make_conn(on=short_window)
    with FunctionGraphHook(conn_id) as hook:
        request_id = hook.invoke_async("hello", {})
    time.sleep(1.0)  # past the emulator's 0.5 s default window
    sensor = FunctionGraphAsyncInvocationSensor(
        task_id="wait",
        request_id=request_id,
        function_name="hello",
        functiongraph_conn_id=conn_id,
        poke_interval=0.1,
        timeout=30,
    )

    dag_run = SimpleNamespace(start_date=datetime.now(UTC) - timedelta(minutes=1))
    context = cast("Context", {"ti": RecordingTaskInstance(), "dag_run": dag_run})
    deadline = time.monotonic() + 20
    poked: Any = False
    while time.monotonic() < deadline and not poked:
        poked = sensor.poke(context)
        time.sleep(0.1)
    assert poked.xcom_value["status"] == "SUCCESS"


# -- async status: no persistence ----------------------------------------------------------------


def test_persistence_off_job_fails_clearly_in_the_worker(emu: Any, make_conn: ConnFactory) -> None:
    # Settings that cannot be read do not stop the job: the missing record still ends the wait.
    emu.inject_fault("unavailable", count=None, function="unrecorded", route="async_config")
    operator = InvokeFunctionAsyncOperator(
        task_id="start_and_wait",
        function_name="unrecorded",
        functiongraph_conn_id=make_conn(),
        wait_for_completion=True,
        poll_interval=0.1,
        max_poll_interval=0.2,
        missing_record_timeout=1.0,
    )
    with pytest.raises(AsyncRecordNotFoundError) as caught:
        operator.execute(_context()[0])
    message = str(caught.value)
    assert "async status persistence is disabled" in message
    assert "query window" in message
    assert "another function" in message
    assert emu.invocation_count("unrecorded") == 1  # started once, never re-sent


def test_persistence_off_job_fails_clearly_in_the_triggerer(emu: Any, make_conn: ConnFactory) -> None:
    conn_id = make_conn()
    with FunctionGraphHook(conn_id) as hook:
        request_id = hook.invoke_async("unrecorded", {})
    event = run_trigger(
        FunctionGraphAsyncInvocationTrigger(
            functiongraph_conn_id=conn_id,
            function_urn=emu.urn("unrecorded"),
            request_id=request_id,
            poll_interval=0.1,
            max_poll_interval=0.2,
            missing_record_timeout=0.5,
        )
    )
    assert event["status"] == "error"
    assert event["error"]["type"] == "AsyncRecordNotFoundError"
    operator = InvokeFunctionAsyncOperator(
        task_id="t", function_name="unrecorded", functiongraph_conn_id=conn_id
    )
    with pytest.raises(AsyncRecordNotFoundError, match="persistence"):
        operator.execute_complete(_context()[0], event, function="unrecorded")


def test_persistence_off_sensor_fails_clearly(emu: Any, make_conn: ConnFactory) -> None:
    conn_id = make_conn()
    with FunctionGraphHook(conn_id) as hook:
        request_id = hook.invoke_async("unrecorded", {})
    emu.inject_fault("unavailable", count=None, function="unrecorded", route="async_config")  # unreadable
    sensor = FunctionGraphAsyncInvocationSensor(
        task_id="wait",
        request_id=request_id,
        function_name="unrecorded",
        functiongraph_conn_id=conn_id,
        missing_record_timeout=0,
    )
    with pytest.raises(AsyncRecordNotFoundError, match=request_id):
        sensor.poke(_context()[0])


def test_trigger_serializes_the_window_and_bound() -> None:
    trigger = FunctionGraphAsyncInvocationTrigger(
        functiongraph_conn_id="c",
        function_urn="urn:fss:r:p:function:default:f",
        request_id="rid",
        query_begin_time="2024-01-01T00:00:00",
        missing_record_timeout=12.5,
    )
    _, kwargs = trigger.serialize()
    rebuilt = FunctionGraphAsyncInvocationTrigger(**kwargs)
    assert (rebuilt.query_begin_time, rebuilt.missing_record_timeout) == ("2024-01-01T00:00:00", 12.5)


# -- the gateway's cut of synchronous answers ----------------------------------------------------


def test_sync_operator_cut_by_the_gateway_fails_clearly_and_is_not_resent(
    short_gateway: FunctionGraphEmulator, make_conn: ConnFactory, tmp_path: Path
) -> None:
    mark = tmp_path / "finished.txt"
    operator = InvokeFunctionOperator(
        task_id="long",
        function_name="finish_mark",
        payload={"seconds": 2.5, "path": str(mark)},
        functiongraph_conn_id=make_conn(on=short_gateway),
    )
    with pytest.raises(ServiceUnavailableError) as caught:
        operator.execute(_context()[0])
    message = str(caught.value)
    assert "504 APIG.0201" in message
    assert "may still be running" in message
    assert "InvokeFunctionAsyncOperator" in message
    assert short_gateway.request_count("invoke") == 1
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not mark.exists():
        time.sleep(0.05)
    assert len(mark.read_text().splitlines()) == 1  # the function ran on, once


def test_invoke_timeout_over_the_gateway_limit_warns() -> None:
    with pytest.warns(UserWarning, match=r"90 s limit.*InvokeFunctionAsyncOperator"):
        InvokeFunctionOperator(task_id="t", function_name="f", invoke_timeout=120)


# -- 403 FSS.0403 invalid token ------------------------------------------------------------------


def test_invalid_token_403_is_refreshed_once(emu: Any, make_conn: ConnFactory) -> None:
    emu.inject_fault("invalid_token", route="invoke")
    with FunctionGraphHook(make_conn("password")) as hook:
        result = hook.invoke("hello", {"name": "again"})
    assert result.result["message"] == "Hello, again!"
    assert emu.request_count("token") == 2
    assert emu.request_count("invoke") == 2
    assert emu.invocation_count("hello") == 1


def test_invalid_token_403_is_refreshed_once_by_the_async_hook(emu: Any, make_conn: ConnFactory) -> None:
    emu.inject_fault("invalid_token", route="invoke")

    async def call() -> Any:
        async with FunctionGraphAsyncHook(make_conn("password")) as hook:
            return await hook.ainvoke("hello", {"name": "async"})

    assert asyncio.run(call()).result["message"] == "Hello, async!"
    assert emu.request_count("token") == 2
    assert emu.invocation_count("hello") == 1


# -- function failures in every plausible shape; success that looks like a failure ---------------


@pytest.mark.parametrize("shape", ["error_500", "error_code_only", "error_bare"])
def test_function_failure_in_any_shape_fails_the_task_once(
    emu: Any, make_conn: ConnFactory, shape: str
) -> None:
    emu.inject_fault(shape, function="fail")
    operator = InvokeFunctionOperator(
        task_id="fail", function_name="fail", payload={"value": shape}, functiongraph_conn_id=make_conn()
    )
    with pytest.raises(FunctionError, match=f"bad input: '{shape}'"):
        operator.execute(_context()[0])
    assert emu.invocation_count("fail") == 1  # a function failure is never re-sent, even as HTTP 500


@pytest.mark.parametrize("request_version", ["v1", "v0"])
def test_success_with_an_error_shaped_result_succeeds(
    emu: Any, make_conn: ConnFactory, request_version: str
) -> None:
    operator = InvokeFunctionOperator(
        task_id="shaped",
        function_name="error_shaped",
        request_version=request_version,
        functiongraph_conn_id=make_conn(),
    )
    result = operator.execute(_context()[0])
    assert result["errorMessage"] == "not an error: a field of the result"
    assert result["value"] == 1
