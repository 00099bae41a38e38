"""InvokeFunctionBatchOperator's checks when the DAG is parsed, and what it hands its trigger."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_fgs.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_fgs.operators.batch import InvokeFunctionBatchOperator
from airflow_provider_fgs.protocol.errors import InvalidRequestError
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.triggers.batch import FunctionGraphBatchTrigger

SQUARE = Invocation(function_name="square")


def batch(**arguments: Any) -> InvokeFunctionBatchOperator:
    return InvokeFunctionBatchOperator(
        task_id="batch", **{"invocation": SQUARE, "payloads": [{}], **arguments}
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"invocation": Invocation(function_name="square", payload={"x": 1})}, "payload must be unset"),
        ({"payloads_path": "/tmp/items.jsonl"}, "either payloads or payloads_path"),
        ({"payloads": None}, "either payloads or payloads_path"),
        ({"max_concurrency": 0}, "Invalid max_concurrency 0"),
        ({"max_concurrency": True}, "Invalid max_concurrency True"),
        ({"max_failed_ratio": 1.5}, "Invalid max_failed_ratio 1.5"),
        ({"max_failed_items": -1}, "Invalid max_failed_items -1"),
        ({"result_check": len, "deferrable": True}, "a callable cannot travel to the triggerer"),
        ({"invocation": {"function_name": "square", "memory": 128}}, "Unknown invocation option(s) memory"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_arguments_fail_when_the_dag_is_parsed_naming_the_value(
    arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        batch(**arguments)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "needs deferrable=True"),
        ({"deferrable": True, "pool": "functiongraph"}, "pool='functiongraph'"),
        ({"deferrable": True, "max_active_tis_per_dag": 2}, "max_active_tis_per_dag=2"),
    ],
)
def test_start_from_trigger_refuses_what_only_a_worker_start_keeps(
    arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        batch(start_from_trigger=True, **arguments)


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="the scheduler starts tasks in the triggerer from 3.3")
def test_a_started_batch_hands_its_trigger_its_unrendered_arguments_and_options() -> None:
    operator = batch(
        invocation=Invocation(function_name="{{ params.function }}", log_type=None),
        payloads_path="{{ params.path }}",
        payloads=None,
        max_concurrency=7,
        result_check=("$.ok", True),
        deferrable=True,
        start_from_trigger=True,
    )
    arguments = operator.start_trigger_args.trigger_kwargs["arguments"]  # type: ignore[union-attr]
    assert arguments["invocation"]["function_name"] == "{{ params.function }}"
    assert arguments["payloads_path"] == "{{ params.path }}"
    assert (arguments["max_concurrency"], arguments["result_check"]) == (7, ("$.ok", True))
    assert operator.start_from_trigger is True


def test_the_trigger_serializes_to_what_rebuilds_it() -> None:
    trigger = FunctionGraphBatchTrigger(
        functiongraph_conn_id="fg",
        invocation=Invocation(function_urn="urn:fss:r:p:function:default:f:latest").to_dict(),
        options={"max_concurrency": 5},
        payloads_path="s3://bucket/items.jsonl",
        results_path="s3://bucket/results.jsonl",
        end_from_trigger=False,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_fgs.triggers.batch.FunctionGraphBatchTrigger"
    assert FunctionGraphBatchTrigger(**kwargs).serialize() == (classpath, kwargs)
