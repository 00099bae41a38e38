"""
A task that the scheduler starts in the triggerer (``start_from_trigger``, Airflow 3.3): its trigger reads
the invocation from the serialized task, renders its templates, picks its mapped values, and checks it.

The DAGs go through Airflow's own serialization, as the scheduler stores them and the triggerer reads
them; the task instance is a stand-in holding that serialized task (tests/integration runs the real
scheduler and triggerer: test_start_from_trigger.py). XComs of upstream tasks live in the supervisor
stand-in of ``conftest.py``; invocations go to the emulator over loopback.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from airflow.sdk import DAG, task
from airflow.triggers.base import TaskSuccessEvent

from airflow_provider_fgs.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.protocol.errors import InvalidRequestError, error_from_event
from airflow_provider_fgs.triggers.functiongraph import FunctionGraphInvokeTrigger
from tests.triggering import first_event

STARTED = {"deferrable": True, "start_from_trigger": True}
pytestmark = [
    pytest.mark.usefixtures("fgs_connection"),
    pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="the scheduler starts tasks in the triggerer from 3.3"),
]


class StartedTaskInstance:
    """What the triggerer hands the trigger of a task it started: the task from the serialized DAG."""

    def __init__(
        self, serialized_task: Any, map_index: int = -1, try_number: int = 1, **context: Any
    ) -> None:
        self.task = serialized_task
        self.dag_id = serialized_task.dag_id
        self.task_id = serialized_task.task_id
        self.run_id = "manual__1"
        self.map_index = map_index
        self.try_number = try_number
        self._context = {"run_id": self.run_id, "ti": self, "task_instance": self, **context}

    def get_template_context(self) -> dict[str, Any]:
        return self._context


def serialized(dag: DAG) -> Any:
    """``dag`` as the triggerer reads it: serialized by Airflow, then deserialized."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def start_trigger(serialized_task: Any) -> FunctionGraphInvokeTrigger:
    """The trigger the scheduler makes of the task's ``start_trigger_args``, decoded as the triggerer does."""
    from airflow.models.trigger import Trigger
    from airflow.serialization.decoders import smart_decode_trigger_kwargs

    stored = Trigger.encrypt_kwargs(serialized_task.start_trigger_args.trigger_kwargs)
    kwargs = {
        key: smart_decode_trigger_kwargs(value) for key, value in Trigger._decrypt_kwargs(stored).items()
    }
    return FunctionGraphInvokeTrigger(**kwargs)


def started(serialized_task: Any, map_index: int = -1, try_number: int = 1, **context: Any) -> Any:
    """The first event of the trigger of ``serialized_task`` started in the triggerer."""
    trigger = start_trigger(serialized_task)
    trigger.task_instance = StartedTaskInstance(serialized_task, map_index, try_number, **context)  # type: ignore[assignment]
    return asyncio.run(first_event(trigger))


@pytest.fixture(autouse=True)
def store(supervisor: Any) -> Any:
    return supervisor(0)


def test_a_task_started_in_the_triggerer_renders_its_templates_and_ends_there(
    emulator: Any, store: Any
) -> None:
    with DAG("start_here", schedule=None, params={"who": "Ada"}) as dag:
        InvokeFunctionOperator(
            task_id="hello",
            function_name="{{ 'hel' ~ 'lo' }}",
            payload={"name": "{{ params.who }}"},
            deferrable=True,
            start_from_trigger=True,
        )
    before = emulator.invocation_count("hello")
    event = started(serialized(dag).get_task("hello"), params={"who": "Ada"})
    assert isinstance(event, TaskSuccessEvent)
    assert store.xcoms["return_value"]["message"] == "Hello, Ada!"
    assert emulator.invocation_count("hello") == before + 1


def test_native_rendering_follows_the_dag(emulator: Any, store: Any) -> None:
    with DAG("native", schedule=None, render_template_as_native_obj=True) as dag:
        InvokeFunctionOperator(
            task_id="square",
            function_name="square",
            payload="{{ {'x': 7} }}",
            deferrable=True,
            start_from_trigger=True,
        )
    assert isinstance(started(serialized(dag).get_task("square")), TaskSuccessEvent)
    assert store.xcoms["return_value"]["square"] == 49


@pytest.mark.parametrize(
    ("map_index", "event"),
    [
        (2, {"x": 5}),
        (1, {"x": "10"}),
    ],  # a literal expanded value is a template field: rendered, as on a worker
)
def test_a_mapped_task_invokes_with_the_value_of_its_map_index(
    emulator: Any, store: Any, map_index: int, event: dict[str, Any]
) -> None:
    with DAG("mapped", schedule=None) as dag:
        InvokeFunctionOperator.partial(
            task_id="echo", function_name="echo", deferrable=True, start_from_trigger=True
        ).expand(payload=[{"x": 2}, {"x": "{{ params.base }}"}, {"x": 5}])
    assert isinstance(
        started(serialized(dag).get_task("echo"), map_index, params={"base": 10}), TaskSuccessEvent
    )
    assert store.xcoms["return_value"]["event"] == event


def test_a_mapped_task_reads_its_value_from_the_upstream_xcom(emulator: Any, store: Any) -> None:
    with DAG("mapped_xcom", schedule=None) as dag:

        @task
        def numbers() -> list[dict[str, int]]:
            return [{"x": 3}, {"x": 4}]

        InvokeFunctionOperator.partial(
            task_id="square", function_name="square", deferrable=True, start_from_trigger=True
        ).expand(payload=numbers())
    store.xcoms["return_value"] = [{"x": 3}, {"x": "{{ never rendered }}"}]  # the upstream's result
    event = started(serialized(dag).get_task("square"), 0)
    assert isinstance(event, TaskSuccessEvent)
    assert store.xcoms["return_value"] == {"x": 3, "square": 9}


def test_several_mapped_arguments_are_crossed_as_airflow_crosses_them(emulator: Any, store: Any) -> None:
    with DAG("crossed", schedule=None) as dag:
        InvokeFunctionOperator.partial(task_id="echo", deferrable=True, start_from_trigger=True).expand(
            function_name=["echo", "hello"], payload=[{"n": 1}, {"n": 2}, {"n": 3}]
        )
    event = started(serialized(dag).get_task("echo"), 2)  # (echo, n=3): the last argument varies fastest
    assert isinstance(event, TaskSuccessEvent)
    assert store.xcoms["return_value"]["event"] == {"n": 3}


def test_bad_input_fails_the_task_with_the_workers_typed_error_and_no_call(emulator: Any) -> None:
    with DAG("bad", schedule=None) as dag:
        InvokeFunctionOperator(
            task_id="bad",
            function_name="square",
            payload="{{ 'not json' }}",
            deferrable=True,
            start_from_trigger=True,
        )
    before = emulator.invocation_count("square")
    event = started(serialized(dag).get_task("bad"))
    assert event.payload["status"] == "error"
    error = error_from_event(event.payload["error"])
    assert isinstance(error, InvalidRequestError)
    assert "not valid JSON" in str(error)
    assert emulator.invocation_count("square") == before


def test_what_only_a_worker_can_prepare_starts_the_task_on_a_worker(emulator: Any) -> None:
    with DAG("macros", schedule=None, user_defined_macros={"who": lambda: "Ada"}) as dag:
        InvokeFunctionOperator(
            task_id="hello",
            function_name="hello",
            payload={"name": "{{ who() }}"},
            deferrable=True,
            start_from_trigger=True,
        )
    before = emulator.invocation_count("hello")
    event = started(serialized(dag).get_task("hello"))
    assert event.payload["status"] == "start_on_worker"
    assert "user_defined_macros" in event.payload["reason"]
    assert emulator.invocation_count("hello") == before


def test_a_task_with_outlets_started_here_resumes_on_a_worker_to_end(emulator: Any, store: Any) -> None:
    from airflow.sdk import Asset

    with DAG("outlets", schedule=None) as dag:
        InvokeFunctionOperator(
            task_id="hello",
            function_name="hello",
            deferrable=True,
            start_from_trigger=True,
            outlets=[Asset("fgs://hello/greeting")],
        )
    event = started(serialized(dag).get_task("hello"))
    assert event.payload["status"] == "success"  # resumes: the worker's success call registers the event
    assert "return_value" not in store.xcoms


def test_a_retry_started_here_replaces_what_the_earlier_try_left(emulator: Any, store: Any) -> None:
    """A worker clears a try's XComs when it starts one; a try started in the triggerer has no worker."""
    with DAG("retried", schedule=None) as dag:
        InvokeFunctionOperator(
            task_id="hello", function_name="hello", deferrable=True, start_from_trigger=True
        )
    store.xcoms.update(
        {
            "functiongraph_invoke_claim": {"try_number": 1, "state": "done", "event": {"status": "ended"}},
            "return_value": {"message": "from try 1"},
            "request_id": "try-1",
            "log": "try 1's log",
        }
    )
    event = started(serialized(dag).get_task("hello"), try_number=2)
    assert isinstance(event, TaskSuccessEvent)
    assert store.xcoms["return_value"]["message"] == "Hello, world!"
    assert store.xcoms["request_id"] != "try-1"
    assert store.xcoms["log"] != "try 1's log"
    claim = store.xcoms["functiongraph_invoke_claim"]
    # that try's request id could have been taken for this one's: the end is recorded instead
    assert (claim["try_number"], claim["event"]) == (2, {"status": "ended"})


def test_whatever_the_triggerer_cannot_read_starts_the_task_on_a_worker(emulator: Any) -> None:
    with DAG("unreadable", schedule=None) as dag:
        InvokeFunctionOperator(
            task_id="hello", function_name="hello", payload={"name": "{{ params.who }}"}, **STARTED
        )
    trigger = start_trigger(serialized(dag).get_task("hello"))
    instance = StartedTaskInstance(serialized(dag).get_task("hello"))

    def broken_context() -> Any:
        raise RuntimeError("no context here")

    instance.get_template_context = broken_context  # type: ignore[method-assign]
    trigger.task_instance = instance  # type: ignore[assignment]
    event = asyncio.run(first_event(trigger))
    assert event.payload["status"] == "start_on_worker"
    assert "RuntimeError: no context here" in event.payload["reason"]
