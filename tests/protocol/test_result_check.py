"""``result_check`` specs: checked when the DAG is parsed, evaluated on decoded results."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.protocol.errors import FunctionError, InvalidRequestError
from airflow_provider_fgs.protocol.result_check import ResultCheck, ResultCheckError, parse_json_path


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$.status", ["status"]),
        ("status", ["status"]),
        ("$.items[0].id", ["items", 0, "id"]),
        ('$["a key"][2]', ["a key", 2]),
        ("$['x'].y-z", ["x", "y-z"]),
        ("$", []),
    ],
)
def test_simple_json_paths(path: str, steps: list[Any]) -> None:
    assert parse_json_path(path) == steps


@pytest.mark.parametrize("path", ["$..status", "$.items[*]", "$.items[-1]", "$[?(@.a)]", "", "$.a b"])
def test_other_json_paths_are_refused_naming_the_path(path: str) -> None:
    with pytest.raises(InvalidRequestError, match="result_check path"):
        parse_json_path(path)


@pytest.mark.parametrize("spec", ["$.status", ("$.status",), (1, 2), {"path": "$.a"}])
def test_a_spec_that_is_neither_callable_nor_pair_fails_at_parse_time(spec: Any) -> None:
    with pytest.raises(InvalidRequestError, match="Invalid result_check"):
        InvokeFunctionOperator(task_id="t", function_name="echo", result_check=spec)


def test_async_operator_needs_to_wait_to_check() -> None:
    with pytest.raises(InvalidRequestError, match="needs wait_for_completion=True"):
        InvokeFunctionAsyncOperator(task_id="t", function_name="echo", result_check=("$.status", "SUCCESS"))


@pytest.mark.parametrize(
    ("spec", "result", "reason"),
    [
        (("$.state", "ok"), {"state": "ok"}, None),
        (("$.state", "ok"), '{"state": "ok"}', None),  # deserialize_result=False keeps text
        (("$.state", "ok"), {"state": "failed"}, "found 'failed'"),
        (("$.rows[1]", 2), {"rows": [1]}, "the result has no value at $.rows[1]"),
        (("$.state", "ok"), "not json", "the result is not JSON"),
        (("$", None), None, None),
        (lambda r: r > 1, 2, None),
        (lambda r: r > 1, 0, "the check returned False"),
        (lambda r: r["missing"], {}, "the check raised KeyError: 'missing'"),
    ],
)
def test_check_verdicts(spec: Any, result: Any, reason: str | None) -> None:
    assert ResultCheck(spec).failure(result) == reason


def test_a_failed_check_is_a_function_error_naming_check_request_and_function() -> None:
    check = ResultCheck(("$.state", "ok"))
    with pytest.raises(ResultCheckError) as caught:
        check.verify({"state": "quota"}, function="urn:fss:f", request_id="r-1")
    assert isinstance(caught.value, FunctionError)
    assert caught.value.request_id == "r-1"
    assert str(caught.value).startswith("Result check $.state == 'ok' failed for request r-1 of urn:fss:f")
