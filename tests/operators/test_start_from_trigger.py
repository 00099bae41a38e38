"""``start_from_trigger``: what the operator asks the scheduler for, and what it refuses when parsed."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_fgs.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.triggers.functiongraph import FunctionGraphInvokeTrigger

TRIGGER = f"{FunctionGraphInvokeTrigger.__module__}.FunctionGraphInvokeTrigger"


def test_a_task_started_in_the_triggerer_hands_it_its_arguments_unrendered() -> None:
    operator = InvokeFunctionOperator(
        task_id="hello",
        function_name="hello",
        payload={"name": "{{ params.who }}"},
        deferrable=True,
        start_from_trigger=True,
        result_check=lambda result: True,
    )
    if not AIRFLOW_V_3_3_PLUS:
        assert operator.start_from_trigger is False  # the task starts on a worker, which says why
        return
    assert operator.start_from_trigger is True
    arguments = operator.start_trigger_args.trigger_kwargs["arguments"]
    assert operator.start_trigger_args.trigger_cls == TRIGGER
    assert operator.start_trigger_args.next_method == "execute_complete"
    assert arguments["payload"] == {"name": "{{ params.who }}"}
    assert arguments["function_name"] == "hello"
    assert arguments["result_check"] is True  # callables stay on the worker: only that there is one
    assert type(operator).start_trigger_args.trigger_kwargs == {"start_from_trigger": True}  # untouched


def test_without_start_from_trigger_the_scheduler_queues_the_task_for_a_worker() -> None:
    operator = InvokeFunctionOperator(task_id="hello", function_name="hello", deferrable=True)
    assert operator.start_from_trigger is False


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ({"deferrable": False}, "needs deferrable=True"),
        ({"max_active_tis_per_dag": 2}, "max_active_tis_per_dag=2"),
        ({"max_active_tis_per_dagrun": 2}, "max_active_tis_per_dagrun=2"),
        ({"pool": "functiongraph"}, "pool='functiongraph'"),
        ({"pool_slots": 2}, "pool_slots=2"),
        ({"on_execute_callback": lambda context: None}, "on_execute_callback="),
        ({"pre_execute": lambda context: None}, "pre_execute="),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_what_only_a_worker_start_keeps_refuses_start_from_trigger_when_parsed(
    setting: dict[str, Any], named: str
) -> None:
    arguments = {"deferrable": True, **setting}
    with pytest.raises(ValueError, match=rf"'square'.*start_from_trigger=True.*{named}"):
        InvokeFunctionOperator(task_id="square", function_name="square", start_from_trigger=True, **arguments)
    with DAG("mapped_refused", schedule=None), pytest.raises(ValueError, match=named):
        InvokeFunctionOperator.partial(
            task_id="square", function_name="square", start_from_trigger=True, **arguments
        ).expand(payload=[{"x": 1}])


def test_the_default_pool_does_not_refuse_it() -> None:
    InvokeFunctionOperator(
        task_id="square",
        function_name="square",
        deferrable=True,
        start_from_trigger=True,
        pool="default_pool",
    )


def test_a_mapped_task_asks_the_scheduler_to_start_it_in_the_triggerer() -> None:
    with DAG("mapped", schedule=None):
        mapped = InvokeFunctionOperator.partial(
            task_id="square", function_name="square", deferrable=True, start_from_trigger=True
        ).expand(payload=[{"x": 1}, {"x": 2}])
    assert mapped.start_from_trigger is AIRFLOW_V_3_3_PLUS
    assert mapped.start_trigger_args is not None
    assert mapped.start_trigger_args.trigger_kwargs == {"start_from_trigger": True}


@pytest.mark.skipif(AIRFLOW_V_3_3_PLUS, reason="Airflow 3.3 starts such tasks in the triggerer")
def test_before_airflow_3_3_the_task_log_says_why_it_started_on_a_worker() -> None:
    operator = InvokeFunctionOperator(
        task_id="hello", function_name="hello", deferrable=True, start_from_trigger=True
    )
    assert operator._start_unavailable is not None
    assert "start_from_trigger needs Airflow 3.3" in operator._start_unavailable
    assert "defers from there" in operator._start_unavailable
