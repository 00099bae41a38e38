"""The triggers under asyncio against the emulator over loopback (real aiohttp, real sockets)."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook
from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.protocol.errors import (
    AuthenticationError,
    FunctionError,
    ServiceUnavailableError,
    ThrottledError,
    error_from_event,
)
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.protocol.invoke import InvocationResult
from airflow_provider_fgs.triggers.functiongraph import (
    FunctionGraphAsyncInvocationTrigger,
    FunctionGraphInvokeTrigger,
)
from tests.connections import emulator_extra
from tests.triggering import first_event, run_trigger

pytestmark = pytest.mark.usefixtures("fgs_connection")


def invoke_trigger(
    emulator: Any, name: str, payload: Any, conn_id: str = "functiongraph_default", **options: Any
) -> FunctionGraphInvokeTrigger:
    """The trigger a worker defers with: the invocation checked, its function named by URN."""
    invocation = Invocation(function_urn=emulator.urn(name), payload=payload, **options).check()
    return FunctionGraphInvokeTrigger(functiongraph_conn_id=conn_id, invocation=invocation.to_dict())


def password_connection(emulator: Any, password: str) -> str:
    """An IAM password connection to the emulator's demo user, as ``AIRFLOW_CONN_*`` JSON."""
    return json.dumps(
        {
            "conn_type": "functiongraph",
            "login": "demo-user",
            "password": password,
            "extra": emulator_extra(emulator, domain_name="demo-domain"),
        }
    )


def test_invoke_trigger_serialization_round_trips_without_secrets(emulator: Any) -> None:
    trigger = invoke_trigger(emulator, "hello", {"name": "Ada"}, instance_memory=256, timeout=5.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_fgs.triggers.functiongraph.FunctionGraphInvokeTrigger"
    rebuilt = FunctionGraphInvokeTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    dumped = json.dumps(kwargs)
    assert "demo-secret-key" not in dumped
    assert "DEMOACCESSKEY" not in dumped


def test_a_trigger_deferred_by_an_earlier_provider_version_still_runs(emulator: Any) -> None:
    """Triggers stored before the invocation became one value object kept each field as an argument."""
    trigger = FunctionGraphInvokeTrigger(
        functiongraph_conn_id="functiongraph_default",
        function_urn=emulator.urn("square"),
        payload=json.dumps({"x": 4}),
        log_type="tail",
        request_version="v1",
        instance_memory=None,
        read_timeout=5.0,
        deserialize_result=True,
    )
    assert (
        trigger.invocation
        == Invocation(function_urn=emulator.urn("square"), payload='{"x": 4}', timeout=5.0).to_dict()
    )
    event = run_trigger(trigger)
    assert json.loads(event["result"]["raw_result"])["square"] == 16


def test_invoke_trigger_returns_the_result_parsed_like_the_sync_path(emulator: Any) -> None:
    event = run_trigger(invoke_trigger(emulator, "hello", {"name": "Ada"}))
    assert event["status"] == "success"
    result = InvocationResult.from_dict(event["result"], deserialize=True)
    assert result.result["message"] == "Hello, Ada!"
    assert result.request_id == result.result["request_id"]
    assert "greeting Ada" in (result.log or "")
    assert not result.is_function_error

    with FunctionGraphHook() as hook:
        sync = hook.invoke(emulator.urn("hello"), {"name": "Ada"})
    assert sync.result["message"] == result.result["message"]
    assert set(sync.summary) == set(result.summary)


def test_invoke_trigger_reports_a_function_error_for_the_operator_to_raise(emulator: Any) -> None:
    event = run_trigger(invoke_trigger(emulator, "divide", {"numerator": 1, "denominator": 0}))
    assert event["status"] == "success"
    assert event["result"]["is_function_error"] is True
    operator = InvokeFunctionOperator(task_id="divide", function_name="divide", do_xcom_push=False)
    with pytest.raises(FunctionError, match="ZeroDivisionError") as failure:
        operator.execute_complete({}, event)  # type: ignore[arg-type]
    assert failure.value.request_id == event["result"]["request_id"]
    assert "dividing 1 by 0" in (failure.value.log or "")
    # Named by its full URN, as the worker path names it (not by the short name given to the operator).
    assert str(failure.value).startswith(f"Function {emulator.urn('divide')} failed: ")


def test_invoke_trigger_retries_throttling_and_runs_the_function_once(emulator: Any) -> None:
    emulator.inject_fault("throttle", count=2, function="square")
    before = emulator.invocation_count("square")
    try:
        event = run_trigger(invoke_trigger(emulator, "square", {"x": 7}))
    finally:
        emulator.clear_faults()
    assert event["status"] == "success"
    assert json.loads(event["result"]["raw_result"])["square"] == 49
    assert emulator.invocation_count("square") == before + 1


def test_invoke_trigger_gives_up_on_persistent_throttling_with_a_typed_error(emulator: Any) -> None:
    emulator.inject_fault("throttle", count=None, function="square")
    try:
        event = run_trigger(invoke_trigger(emulator, "square", {"x": 2}))
    finally:
        emulator.clear_faults()
    assert event["status"] == "error"
    error = error_from_event(event["error"])
    assert isinstance(error, ThrottledError)
    assert error.http_status == 429
    operator = InvokeFunctionOperator(task_id="square", function_name="square", do_xcom_push=False)
    with pytest.raises(ThrottledError):
        operator.execute_complete({}, event)  # type: ignore[arg-type]


def test_invoke_trigger_read_timeout_is_an_error_and_the_call_is_not_resent(emulator: Any) -> None:
    emulator.inject_fault("latency", count=1, function="square", delay=2.0)
    before = emulator.request_count("invoke")
    try:
        event = run_trigger(invoke_trigger(emulator, "square", {"x": 3}, timeout=0.5))
    finally:
        emulator.clear_faults()
    assert event["status"] == "error"
    error = error_from_event(event["error"])
    assert isinstance(error, ServiceUnavailableError)
    assert "timeout" in str(error).lower()
    assert "The call was not re-sent" in str(error)
    assert "retry_sync_invoke" in str(error)
    assert emulator.request_count("invoke") == before + 1


def test_cancelling_the_invoke_trigger_closes_its_client(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.inject_fault("latency", count=1, function="square", delay=3.0)
    trigger = invoke_trigger(emulator, "square", {"x": 4})
    hooks: list[FunctionGraphAsyncHook] = []
    original = FunctionGraphAsyncHook.__aenter__

    async def remember(self: FunctionGraphAsyncHook) -> FunctionGraphAsyncHook:
        hooks.append(self)
        return await original(self)

    async def scenario() -> None:
        task = asyncio.ensure_future(first_event(trigger))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)

    monkeypatch.setattr(FunctionGraphAsyncHook, "__aenter__", remember)
    try:
        asyncio.run(scenario())
    finally:
        emulator.clear_faults()
    assert len(hooks) == 1
    assert hooks[0]._http is None  # closed by __aexit__ on cancellation


def test_invoke_trigger_with_iam_password_fetches_one_token_for_many_calls(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = emu  # no token cached by an earlier test: this one fetches the first
    monkeypatch.setenv("AIRFLOW_CONN_FGS_PASSWORD_TRIGGER", password_connection(emulator, "demo-password"))
    tokens_before = emulator.request_count("token")

    async def many() -> list[TriggerEvent]:
        triggers = [invoke_trigger(emulator, "square", {"x": n}, "fgs_password_trigger") for n in range(8)]
        return await asyncio.gather(*(first_event(t) for t in triggers))

    events = asyncio.run(many())
    squares = sorted(json.loads(e.payload["result"]["raw_result"])["square"] for e in events)
    assert squares == [n * n for n in range(8)]
    assert emulator.request_count("token") == tokens_before + 1


def test_invoke_trigger_with_a_wrong_password_fails_with_authentication_error(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FGS_BAD_PASSWORD", password_connection(emulator, "not-the-password"))
    event = run_trigger(invoke_trigger(emulator, "square", {}, "fgs_bad_password"))
    assert event["status"] == "error"
    error = error_from_event(event["error"])
    assert isinstance(error, AuthenticationError)
    assert "not-the-password" not in json.dumps(event)


def _load(classpath: str) -> Any:
    """The class a stored classpath names, as the triggerer loads it."""
    module, name = classpath.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def test_async_invocation_trigger_waits_until_success(emulator: Any) -> None:
    with FunctionGraphHook() as hook:
        request_id = hook.invoke_async(emulator.urn("square"), {"x": 5})
    trigger = FunctionGraphAsyncInvocationTrigger(
        functiongraph_conn_id="functiongraph_default",
        function_urn=emulator.urn("square"),
        request_id=request_id,
        poll_interval=0.05,
        max_poll_interval=0.2,
    )
    classpath, kwargs = trigger.serialize()
    assert FunctionGraphAsyncInvocationTrigger(**kwargs).serialize() == (classpath, kwargs)
    # Triggers deferred before the wait had a module of its own still load from their stored classpath.
    stored = "airflow_provider_fgs.triggers.functiongraph.FunctionGraphAsyncInvocationTrigger"
    assert [_load(path) for path in (stored, classpath)] == [FunctionGraphAsyncInvocationTrigger] * 2
    event = run_trigger(trigger)
    assert event["status"] == "done"
    assert event["invocation"]["request_id"] == request_id
    assert event["invocation"]["status"] == "SUCCESS"
    operator = InvokeFunctionAsyncOperator(task_id="start", function_name="square")
    record = operator.execute_complete({}, event, function=emulator.urn("square"))  # type: ignore[arg-type]
    assert record["status"] == "SUCCESS"


def test_async_invocation_trigger_reports_failure_for_the_operator_to_raise(emulator: Any) -> None:
    with FunctionGraphHook() as hook:
        request_id = hook.invoke_async(emulator.urn("divide"), {"numerator": 1, "denominator": 0})
    event = run_trigger(
        FunctionGraphAsyncInvocationTrigger(
            functiongraph_conn_id="functiongraph_default",
            function_urn=emulator.urn("divide"),
            request_id=request_id,
            poll_interval=0.05,
            max_poll_interval=0.2,
        )
    )
    assert event["invocation"]["status"] == "FAIL"
    operator = InvokeFunctionAsyncOperator(task_id="start", function_name="divide")
    with pytest.raises(FunctionError, match="FAIL") as failure:
        operator.execute_complete({}, event, function=emulator.urn("divide"))  # type: ignore[arg-type]
    assert failure.value.request_id == request_id
