"""
A deferred wait that ends well ends its task in the triggerer (apache/airflow#67287 cannot fail it).

The trigger runs against the emulator over loopback; the triggerer's supervisor is the in-memory
stand-in of ``conftest.py`` and its task instance a record of the try, since the triggerer itself is
exercised by tests/integration (test_triggerer_restarts.py runs the 20-task fan-out in a deployment).
"""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import DAG, task
from airflow.triggers.base import TaskSuccessEvent, TriggerEvent

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from airflow_provider_fgs.operators.end_from_trigger import may_end_in_triggerer
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.sensors.functiongraph import FunctionGraphAsyncInvocationSensor
from airflow_provider_fgs.triggers.functiongraph import (
    FunctionGraphAsyncInvocationTrigger,
    FunctionGraphInvokeTrigger,
)
from tests.triggering import first_event

pytestmark = pytest.mark.usefixtures("fgs_connection")

TRY = {"dag_id": "d", "run_id": "r", "task_id": "invoke", "map_index": -1, "try_number": 1}


def triggered(emulator: Any, name: str, payload: Any, *, in_triggerer: bool = True, **kwargs: Any) -> Any:
    """The first event of an invoke trigger run as the triggerer runs it (it hands over the task instance)."""
    trigger = FunctionGraphInvokeTrigger(
        functiongraph_conn_id="functiongraph_default",
        function_urn=emulator.urn(name),
        payload=json.dumps(payload),
        task_try=TRY,
        **kwargs,
    )
    if in_triggerer:
        trigger.task_instance = SimpleNamespace(**TRY)  # type: ignore[assignment]
    return asyncio.run(first_event(trigger))


@pytest.fixture(autouse=True)
def store(supervisor: Any) -> Any:
    """The triggerer's supervisor stand-in, holding the task's XComs."""
    return supervisor(0)


def test_a_successful_invocation_ends_the_task_with_its_xcoms_and_log(
    emulator: Any, store: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    before = emulator.invocation_count("hello")
    with caplog.at_level(logging.INFO):
        event = triggered(emulator, "hello", {"name": "Ada"}, end_from_trigger=True)
    logged = caplog.text + capsys.readouterr().out  # structlog writes to stdout, stdlib logging to caplog

    assert isinstance(event, TaskSuccessEvent)
    # Pushed through the supervisor as a worker pushes them, not in the event (which Airflow would store
    # JSON-encoded: a downstream task would pull a string).
    assert event.xcoms is None
    xcoms = {key: value for key, value in store.xcoms.items() if not key.startswith("functiongraph_invoke_")}
    assert xcoms["return_value"]["message"] == "Hello, Ada!"
    assert xcoms["request_id"] == xcoms["return_value"]["request_id"]
    assert "greeting Ada" in xcoms["log"]
    assert set(xcoms) == {"return_value", "request_id", "log", "summary", "billing_duration_ms"}
    # The function's log goes to the task log from the trigger, as the worker would write it.
    assert "INFO greeting Ada" in logged
    assert f"Invocation of {emulator.urn('hello')} succeeded: request id {xcoms['request_id']}" in logged
    assert emulator.invocation_count("hello") == before + 1


def test_without_xcom_push_nothing_is_pushed(emulator: Any, store: Any) -> None:
    silent = triggered(emulator, "hello", {"name": "Ada"}, end_from_trigger=True, push_xcoms=False)
    assert isinstance(silent, TaskSuccessEvent)
    assert "return_value" not in store.xcoms
    assert "request_id" not in store.xcoms


def test_a_raw_result_stays_text(emulator: Any, store: Any) -> None:
    raw = triggered(emulator, "hello", {"name": "Ada"}, end_from_trigger=True, deserialize_result=False)
    assert isinstance(raw, TaskSuccessEvent)
    assert json.loads(store.xcoms["return_value"])["message"] == "Hello, Ada!"


def test_xcoms_that_cannot_be_pushed_resume_the_task_on_a_worker(emulator: Any, store: Any) -> None:
    async def refuse(message: Any) -> Any:
        if type(message).__name__ == "SetXCom" and message.key == "return_value":
            raise ConnectionError("the Execution API is unreachable")
        return await answer(message)

    answer, store.asend = store.asend, refuse
    event = triggered(emulator, "hello", {"name": "Ada"}, end_from_trigger=True)
    assert type(event) is TriggerEvent
    assert event.payload["status"] == "success"


def test_a_function_error_resumes_on_a_worker_which_raises_the_typed_error(emulator: Any) -> None:
    event = triggered(emulator, "divide", {"numerator": 1, "denominator": 0}, end_from_trigger=True)
    assert type(event) is TriggerEvent
    assert event.payload["result"]["is_function_error"] is True


def test_a_refused_call_resumes_on_a_worker(emulator: Any) -> None:
    event = triggered(emulator, "no_such_function", {}, end_from_trigger=True)
    assert type(event) is TriggerEvent
    assert event.payload["status"] == "error"


def test_dag_test_and_the_default_resume_on_a_worker(emulator: Any) -> None:
    # dag.test() hands the trigger no task instance and resumes with the event's payload.
    outside = triggered(emulator, "hello", {"name": "Ada"}, in_triggerer=False, end_from_trigger=True)
    assert type(outside) is TriggerEvent
    assert outside.payload["status"] == "success"
    default = triggered(emulator, "hello", {"name": "Ada"})
    assert type(default) is TriggerEvent


def test_a_run_started_again_ends_the_task_with_the_recorded_outcome(emulator: Any, store: Any) -> None:
    triggered(emulator, "hello", {"name": "Ada"}, end_from_trigger=True)
    first = dict(store.xcoms)
    count = emulator.invocation_count("hello")
    store.xcoms.pop("return_value")  # as if the first run died after recording, before pushing it all
    again = triggered(emulator, "hello", {"name": "Ada"}, end_from_trigger=True)  # same try, same store
    assert isinstance(again, TaskSuccessEvent)
    assert store.xcoms == first
    assert emulator.invocation_count("hello") == count


def waited(emulator: Any, name: str, payload: Any, **kwargs: Any) -> Any:
    """Start ``name`` asynchronously: the first event of its wait, its request id."""
    with FunctionGraphHook() as hook:
        request_id = hook.invoke_async(emulator.urn(name), payload)
    trigger = FunctionGraphAsyncInvocationTrigger(
        functiongraph_conn_id="functiongraph_default",
        function_urn=emulator.urn(name),
        request_id=request_id,
        poll_interval=0.05,
        max_poll_interval=0.2,
        **kwargs,
    )
    trigger.task_instance = SimpleNamespace(**TRY)  # type: ignore[assignment]
    return asyncio.run(first_event(trigger)), request_id


def test_an_async_invocation_that_succeeds_ends_the_task_with_its_status_record(
    emulator: Any, store: Any
) -> None:
    event, request_id = waited(emulator, "square", {"x": 5}, end_from_trigger=True)
    assert isinstance(event, TaskSuccessEvent)
    record = store.xcoms["return_value"]
    assert record["request_id"] == request_id
    assert record["status"] == "SUCCESS"


def test_an_async_invocation_that_fails_resumes_on_a_worker(emulator: Any, store: Any) -> None:
    event, _ = waited(emulator, "divide", {"numerator": 1, "denominator": 0}, end_from_trigger=True)
    assert type(event) is TriggerEvent
    assert event.payload["invocation"]["status"] == "FAIL"
    assert "return_value" not in store.xcoms


def resolve(*, mapped_downstream: bool = False, **kwargs: Any) -> bool:
    with DAG("end_from_trigger", schedule=None):
        operator = InvokeFunctionOperator(task_id="invoke", function_name="hello", **kwargs)
        if mapped_downstream:

            @task
            def each(item: Any) -> Any:
                return item

            each.expand(item=operator.output)
    return may_end_in_triggerer(operator, operator.end_from_trigger, result_check=operator._result_check)


def test_the_operator_ends_in_the_triggerer_unless_something_needs_a_worker() -> None:
    assert resolve() is True
    assert resolve(end_from_trigger=True) is True
    assert resolve(end_from_trigger=False) is False
    assert resolve(result_check=("$.message", "Hello, Ada!")) is False
    assert resolve(multiple_outputs=True) is False
    assert resolve(mapped_downstream=True) is False  # Airflow records the mapped length on a worker


@pytest.mark.parametrize("needs", [{"result_check": ("$.ok", True)}, {"multiple_outputs": True}])
def test_end_from_trigger_true_with_what_needs_a_worker_fails_at_construction(needs: dict[str, Any]) -> None:
    expected = f"end_from_trigger=True cannot be combined with {next(iter(needs))}"
    with pytest.raises(ValueError, match=expected):
        InvokeFunctionOperator(task_id="invoke", function_name="hello", end_from_trigger=True, **needs)
    with pytest.raises(ValueError, match=expected):
        InvokeFunctionAsyncOperator(
            task_id="start", function_name="hello", wait_for_completion=True, end_from_trigger=True, **needs
        )
    with pytest.raises(ValueError, match=expected):
        FunctionGraphAsyncInvocationSensor(
            task_id="wait", function_name="hello", request_id="r", end_from_trigger=True, **needs
        )
