"""
``@task.functiongraph`` under Airflow's real ``dag.test()`` against the emulator: the example DAG (mapped,
deferred, chained), a function error, a result check, and what the decorator refuses when parsed.
"""

from __future__ import annotations

from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task

from airflow_provider_fgs.decorators.functiongraph import functiongraph_task
from tests.dags.dagrun import rendered_fields, run_dag, serialize, states, xcoms

pytestmark = pytest.mark.usefixtures("airflow_db", "emulator_connection")


def _run(dag: Any) -> Any:
    serialize(dag)
    return dag.test()


def test_the_example_dag_chains_maps_and_defers(
    example_dag_bag: Any, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    splits, squares = emulator.invocation_count("split_words"), emulator.invocation_count("square")

    run = run_dag(example_dag_bag, "functiongraph_decorator", run_conf={"text": "a bb ccc"})

    assert states(run) == {
        "split_words": "success",
        "lengths": "success",
        "square[0]": "success",
        "square[1]": "success",
        "square[2]": "success",
        "total": "success",
    }
    assert emulator.invocation_count("split_words") == splits + 1
    assert emulator.invocation_count("square") == squares + 3  # once per mapped task
    assert capsys.readouterr().out.count("Deferring the invocation of") == 3  # each waited in the triggerer
    pushed = xcoms(run)
    assert pushed["split_words"]["return_value"] == {"words": ["a", "bb", "ccc"]}
    assert pushed["square[2]"]["return_value"] == {"x": 3, "square": 9}
    assert pushed["total"]["return_value"] == 1 + 4 + 9
    for task_id in ("split_words", "square[0]"):
        assert pushed[task_id]["request_id"] in pushed[task_id]["log"]
        assert "duration" in pushed[task_id]["summary"]
    # The payload the function returned is what the UI shows as the task's rendered payload.
    assert rendered_fields(run, "split_words")["payload"] == {"text": "a bb ccc"}


def test_a_function_error_fails_the_task_as_the_operator_does(
    emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    before = emulator.invocation_count("divide")
    with DAG("fgs_decorator_function_error", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:

        @functiongraph_task(function_name="divide")
        def divide(denominator: int) -> dict[str, int]:
            return {"numerator": 1, "denominator": denominator}

        divide(0)

    run = _run(dag)

    assert states(run) == {"divide": "failed"}
    assert emulator.invocation_count("divide") == before + 1
    log = capsys.readouterr().out
    assert "FunctionError" in log
    assert "dividing 1 by 0" in log  # the function's log is in the task log
    pushed = xcoms(run)["divide"]
    assert "return_value" not in pushed
    assert "dividing 1 by 0" in pushed["log"]


def test_options_go_to_the_operator_result_check_and_deferral_included(emulator: Any) -> None:
    with DAG("fgs_decorator_options", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:

        @task.functiongraph(function_name="square", result_check=("$.square", 16), deferrable=True)
        def checked(x: int) -> dict[str, int]:
            return {"x": x}

        @task.functiongraph(function_name="square", result_check=("$.square", 16), retries=0)
        def refused(x: int) -> dict[str, int]:
            return {"x": x}

        checked(4)
        refused(5)

    run = _run(dag)

    assert states(run) == {"checked": "success", "refused": "failed"}
    pushed = xcoms(run)
    assert pushed["checked"]["return_value"] == {"x": 4, "square": 16}
    assert pushed["refused"]["request_id"]  # pushed before the check failed the task


def test_what_the_function_returns_is_the_payload_so_payload_is_refused() -> None:
    with pytest.raises(
        TypeError, match=r"@task.functiongraph sends what the decorated function returns: payload"
    ):
        functiongraph_task(function_name="square", payload={"x": 1})


def test_start_from_trigger_is_refused_the_payload_needs_a_worker() -> None:
    with pytest.raises(ValueError, match=r"cannot start in the triggerer \(start_from_trigger=True\)"):

        @task.functiongraph(function_name="square", deferrable=True, start_from_trigger=True)
        def square(x: int) -> dict[str, int]:
            return {"x": x}


def test_a_dict_annotation_does_not_unroll_the_result() -> None:
    with DAG("fgs_decorator_annotation", schedule=None):

        @task.functiongraph(function_name="square")
        def square(x: int) -> dict[str, int]:
            return {"x": x}

        result = square(2)

    assert result.operator.multiple_outputs is False
    assert result.operator.start_trigger_args is None
