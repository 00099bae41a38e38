"""The deferrable example DAG end to end with real ``dag.test()``: the triggers run against the emulator."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.dags.dagrun import run_dag, states, xcoms

pytestmark = pytest.mark.usefixtures("emulator_connection")


def test_deferrable_fan_out_and_async_invocation(
    example_dag_bag: Any, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    invocations_before = emulator.invocation_count("square")
    capsys.readouterr()
    run = run_dag(example_dag_bag, "functiongraph_deferrable")
    output = capsys.readouterr().out

    assert str(run.state) == "success"
    assert states(run) == {
        "square[0]": "success",
        "square[1]": "success",
        "square[2]": "success",
        "total": "success",
        "start_count": "success",
        "wait_count": "success",
    }
    pushed = xcoms(run)
    for index, x in enumerate(range(1, 4)):
        square = pushed[f"square[{index}]"]
        assert square["return_value"] == {"x": x, "square": x * x}
        assert f"squaring {x}" in square["log"]
        assert square["request_id"] in square["log"]
    assert pushed["total"]["return_value"] == 14
    # Each call was made by the trigger, after the task deferred, not inline in the worker.
    assert output.count("Deferring the invocation of") == 3
    assert "Invoking FunctionGraph function" not in output
    assert emulator.invocation_count("square") == invocations_before + 3

    request_id = pushed["start_count"]["request_id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id)
    assert pushed["start_count"]["return_value"] == request_id
    record = pushed["wait_count"]["return_value"]
    assert record["request_id"] == request_id
    assert record["status"] == "SUCCESS"
