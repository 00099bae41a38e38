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
from airflow.sdk import DAG, Asset, task
from airflow.triggers.base import TaskSuccessEvent, TriggerEvent

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.sensors.functiongraph import FunctionGraphAsyncInvocationSensor
from airflow_provider_fgs.triggers import claims, functiongraph
from airflow_provider_fgs.triggers.end_from_trigger import maps_result, worker_decides_end
from airflow_provider_fgs.triggers.functiongraph import (
    FunctionGraphAsyncInvocationTrigger,
    FunctionGraphInvokeTrigger,
)
from tests.triggering import first_event

pytestmark = pytest.mark.usefixtures("fgs_connection")

TRY = {"dag_id": "d", "run_id": "r", "task_id": "invoke", "map_index": -1, "try_number": 1}


def triggered(
    emulator: Any,
    name: str,
    payload: Any,
    *,
    in_triggerer: bool = True,
    deserialize: bool = True,
    **kwargs: Any,
) -> Any:
    """The first event of an invoke trigger run as the triggerer runs it (it hands over the task instance)."""
    invocation = Invocation(function_urn=emulator.urn(name), payload=payload, deserialize=deserialize)
    trigger = FunctionGraphInvokeTrigger(
        functiongraph_conn_id="functiongraph_default",
        invocation=invocation.check().to_dict(),
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


def test_the_outcome_is_logged_before_the_xcoms_are_pushed(
    emulator: Any, store: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """
    The triggerer drops a trigger's log lines that it reads after the trigger's end; the pushes' round
    trips through it come after the lines, so it reads them first (``end_here_with_xcoms``).
    """
    printed: list[str] = []  # structlog writes to stdout (read once), stdlib logging to caplog
    logged_at_push: dict[str, str] = {}

    def on_request(message: Any) -> None:
        printed.append(capsys.readouterr().out)
        if type(message).__name__ == "SetXCom":
            logged_at_push.setdefault(message.key, caplog.text + "".join(printed))

    store.on_request = on_request
    with caplog.at_level(logging.INFO):
        event = triggered(emulator, "hello", {"name": "Ada"}, end_from_trigger=True)

    assert isinstance(event, TaskSuccessEvent)
    first_push = logged_at_push["return_value"]
    assert "INFO greeting Ada" in first_push  # the function's log
    assert f"Invocation of {emulator.urn('hello')} succeeded" in first_push
    assert "Ending the task here, in the triggerer" in first_push


def test_without_xcom_push_nothing_is_pushed(emulator: Any, store: Any) -> None:
    silent = triggered(emulator, "hello", {"name": "Ada"}, end_from_trigger=True, push_xcoms=False)
    assert isinstance(silent, TaskSuccessEvent)
    assert "return_value" not in store.xcoms
    assert "request_id" not in store.xcoms


def test_a_raw_result_stays_text(emulator: Any, store: Any) -> None:
    raw = triggered(emulator, "hello", {"name": "Ada"}, end_from_trigger=True, deserialize=False)
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


@pytest.fixture
def quick_claims(monkeypatch: pytest.MonkeyPatch, emulator: Any, fgs_connection: None) -> None:
    """A run holds its claim for 0.6 s at most (its answer's timeouts), followed every 20 ms."""
    from tests.triggers.test_claims import quick_connection

    monkeypatch.setattr(functiongraph, "FOLLOW_POLL_S", 0.02)
    monkeypatch.setattr(claims, "CLAIM_SLACK_S", 0.1)
    quick_connection(monkeypatch, emulator)


@pytest.mark.usefixtures("quick_claims")
def test_a_run_started_again_ends_the_task_as_the_first_run_did(emulator: Any, store: Any) -> None:
    pushed: list[str] = []
    original = store.asend

    async def recording(message: Any) -> Any:
        if type(message).__name__ == "SetXCom":
            pushed.append(message.key)
        return await original(message)

    store.asend = recording
    triggered(emulator, "hello", {"name": "Ada"}, end_from_trigger=True)
    first = dict(store.xcoms)
    # No outcome record: the request id, pushed last, tells that every XCom is there.
    assert [key for key in pushed if not key.startswith("functiongraph_")][-1] == "request_id"
    assert first["functiongraph_invoke_claim"]["state"] == "sent"
    count = emulator.invocation_count("hello")
    again = triggered(emulator, "hello", {"name": "Ada"}, end_from_trigger=True)  # same try, same store
    assert isinstance(again, TaskSuccessEvent)
    contender = "functiongraph_invoke_contender"  # the second run announced itself, then found the outcome
    assert {k: v for k, v in store.xcoms.items() if k != contender} == {
        k: v for k, v in first.items() if k != contender
    }
    assert emulator.invocation_count("hello") == count


def test_a_result_that_a_mapped_task_downstream_expands_over_carries_its_length(
    emulator: Any, store: Any
) -> None:
    pushed: list[Any] = []
    original = store.asend

    async def recording(message: Any) -> Any:
        if type(message).__name__ == "SetXCom":
            pushed.append((message.key, message.mapped_length))
        return await original(message)

    store.asend = recording
    event = triggered(emulator, "items", {"value": ["a", "b", "c"]}, end_from_trigger=True, maps_result=True)
    assert isinstance(event, TaskSuccessEvent)
    assert store.xcoms["return_value"] == ["a", "b", "c"]
    assert ("return_value", 3) in pushed
    assert all(length is None for key, length in pushed if key != "return_value")


def test_a_result_that_cannot_be_mapped_over_resumes_on_a_worker(emulator: Any, store: Any) -> None:
    event = triggered(emulator, "items", {"value": 3}, end_from_trigger=True, maps_result=True)
    assert type(event) is TriggerEvent  # the worker fails it with Airflow's own error
    assert "return_value" not in store.xcoms


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
    assert maps_result(operator, -1) is mapped_downstream
    return worker_decides_end(operator, operator.end_from_trigger)


def test_the_operator_ends_in_the_triggerer_unless_something_needs_a_worker() -> None:
    assert resolve() is True
    assert resolve(end_from_trigger=True) is True
    assert resolve(end_from_trigger=False) is False
    assert resolve(result_check=("$.message", "Hello, Ada!")) is False
    assert resolve(multiple_outputs=True) is False
    assert resolve(outlets=[Asset("fgs://hello/out")]) is False  # asset events: a worker's success call
    assert resolve(map_index_template="{{ task.task_id }}") is False
    assert resolve(post_execute=lambda context, result: None) is False
    # Airflow 3.3's DAG processor runs only failure callbacks for a task ended in the triggerer
    assert resolve(on_success_callback=lambda context: None) is False
    assert resolve(on_failure_callback=lambda context: None) is True  # a failure resumes on a worker anyway
    assert resolve(mapped_downstream=True) is True  # the trigger pushes the mapped length itself


NEEDS_A_WORKER_TO_END = [
    {"result_check": ("$.ok", True)},
    {"multiple_outputs": True},
    {"outlets": [Asset("fgs://hello/out")]},
    {"map_index_template": "{{ ti.map_index }}"},
    {"on_success_callback": lambda context: None},
]


@pytest.mark.parametrize("needs", NEEDS_A_WORKER_TO_END, ids=lambda needs: next(iter(needs)))
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
