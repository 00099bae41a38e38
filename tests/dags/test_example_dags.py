"""
Each example DAG runs with Airflow's real ``dag.test()`` against the emulator.

The DAGs name their functions (no URN), so ``functiongraph_default`` (pointed at the emulator) supplies
the region and project: the same files run unchanged against real FunctionGraph. States and XComs are
read back from the metadata DB; the task log is what ``dag.test()`` prints for the task.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.links.functiongraph import (
    FunctionGraphConsoleLink,
    FunctionGraphLogLink,
    function_console_url,
    lts_log_stream_url,
)
from airflow_provider_fgs.protocol.urn import FunctionUrn
from tests.dags.dagrun import rendered_fields, run_dag, states, xcoms

pytestmark = pytest.mark.usefixtures("emulator_connection")

LINK_KEY = FunctionGraphConsoleLink().xcom_key
LOG_LINK_KEY = FunctionGraphLogLink().xcom_key


def assert_invocation_details(pushed: dict[str, Any], *, log_line: str) -> None:
    request_id = pushed["request_id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id), request_id
    assert log_line in pushed["log"]
    assert request_id in pushed["log"]
    assert "duration" in pushed["summary"]
    assert isinstance(pushed["billing_duration_ms"], int)


def test_single_invoke(example_dag_bag: Any, emulator: Any) -> None:
    run = run_dag(example_dag_bag, "functiongraph_single_invoke", run_conf={"name": "Grace"})

    assert str(run.state) == "success"
    assert states(run) == {"invoke_hello": "success"}
    pushed = xcoms(run)["invoke_hello"]
    assert pushed["return_value"] == {"message": "Hello, Grace!", "request_id": pushed["request_id"]}
    assert_invocation_details(pushed, log_line="greeting Grace")
    hello = FunctionUrn(emulator.region, emulator.project_id, "default", "hello")
    assert pushed[LINK_KEY] == function_console_url(hello)
    # The LTS link searches the function's log stream for this invocation's request id.
    stream = FunctionGraphHook().function_log_stream(hello)
    assert stream is not None
    assert pushed[LOG_LINK_KEY] == lts_log_stream_url(hello.region, *stream, request_id=pushed["request_id"])

    rendered = rendered_fields(run, "invoke_hello")
    assert rendered["payload"] == {"name": "Grace", "run_id": run.run_id}
    assert rendered["function_name"] == "hello"
    # The connection's secret key signs every call, yet appears in neither XCom nor rendered fields.
    secret_key = json.loads(os.environ["AIRFLOW_CONN_FUNCTIONGRAPH_DEFAULT"])["password"]
    assert secret_key not in json.dumps([pushed, rendered])


def test_chain_templates_the_second_payload_from_the_first_result(example_dag_bag: Any) -> None:
    text = "to be or not to be, that is the question"
    run = run_dag(example_dag_bag, "functiongraph_chain", run_conf={"text": text})

    assert str(run.state) == "success"
    assert states(run) == {"split_words": "success", "count_words": "success"}
    pushed = xcoms(run)
    words = ["to", "be", "or", "not", "to", "be", "that", "is", "the", "question"]
    assert pushed["split_words"]["return_value"] == {"words": words}
    assert pushed["count_words"]["return_value"] == {
        "total": 10,
        "distinct": 8,
        "top": [["to", 2], ["be", 2], ["or", 1]],
    }
    assert_invocation_details(pushed["split_words"], log_line="into 10 words")
    assert_invocation_details(pushed["count_words"], log_line="counted 10 words, 8 distinct")
    assert pushed["split_words"]["request_id"] != pushed["count_words"]["request_id"]


def test_mapped_fans_one_function_over_a_list(example_dag_bag: Any) -> None:
    run = run_dag(example_dag_bag, "functiongraph_mapped")

    assert str(run.state) == "success"
    assert states(run) == {**{f"square[{i}]": "success" for i in range(5)}, "total": "success"}
    pushed = xcoms(run)
    for i in range(5):
        x = i + 1
        assert pushed[f"square[{i}]"]["return_value"] == {"x": x, "square": x * x}
        assert_invocation_details(pushed[f"square[{i}]"], log_line=f"squaring {x}")
    assert pushed["total"]["return_value"] == 55
    assert len({pushed[f"square[{i}]"]["request_id"] for i in range(5)}) == 5


def test_failing_function_fails_the_task_and_its_log_is_in_the_task_log(
    example_dag_bag: Any, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()  # only this run's output
    run = run_dag(example_dag_bag, "functiongraph_failing")
    task_log = capsys.readouterr().out

    assert str(run.state) == "failed"
    assert states(run) == {"divide_by_zero": "failed"}
    pushed = xcoms(run)["divide_by_zero"]
    assert "return_value" not in pushed
    assert pushed["error_type"] == "FunctionError"
    assert_invocation_details(pushed, log_line="dividing 1 by 0")
    divide = FunctionUrn(emulator.region, emulator.project_id, "default", "divide")
    assert pushed[LINK_KEY] == function_console_url(divide)  # the link is there for a failed task too
    request_id = pushed["request_id"]

    lines = task_log.splitlines()

    def first(fragment: str) -> int:
        return next(i for i, line in enumerate(lines) if fragment in line)

    # The function's own log lines, then the failure summary, then the task failing with FunctionError.
    function_line = first(f"{request_id} INFO dividing 1 by 0")
    summary_line = first("Invocation of urn:fss:")
    error_line = first("FunctionError: Function urn:fss:")
    assert function_line < summary_line < error_line
    assert "failed" in lines[summary_line]
    assert "ZeroDivisionError: division by zero" in lines[error_line]
    assert f"request id {request_id}" in lines[error_line]
    assert "Task failed with exception" in task_log


def test_release_deploys_publishes_splits_and_promotes(example_dag_bag: Any, emulator: Any) -> None:
    emulator.state.registry.seed(2024)  # the alias split is reproducible
    run = run_dag(
        example_dag_bag,
        "functiongraph_release",
        run_conf={"function_name": "greeter", "version": "v2", "stable_version": "v1", "canary_weight": 30},
    )

    assert str(run.state) == "success", states(run)
    pushed = xcoms(run)
    digest = pushed["deploy_code"]["digest"]
    assert pushed["deploy_code"]["return_value"]["config"]["handler"] == "index.handler"
    assert pushed["wait_for_update"]["return_value"]["digest"] == digest
    assert pushed["publish_version"] == {
        "return_value": "v2",
        "digest": digest,
        LINK_KEY: pushed["publish_version"][LINK_KEY],
    }
    assert pushed["canary"]["return_value"]["version"] == "v1"
    assert pushed["canary"]["return_value"]["weights"] == {"v2": 30}
    answers = [pushed[f"invoke_canary[{i}]"]["return_value"] for i in range(10)]
    versions = [answer["version"] for answer in answers]
    assert set(versions) == {"v1", "v2"}  # the seed makes both sides of the split appear
    for answer in answers:  # each version runs its own code
        assert answer["release"] == (2 if answer["version"] == "v2" else 1)
    assert pushed["promote"]["return_value"]["version"] == "v2"
    assert pushed["promote"]["return_value"]["weights"] == {}
    assert pushed["invoke_promoted"]["return_value"] == {
        "greeting": "Hello, everyone!",
        "release": 2,
        "version": "v2",
    }
    greeter = FunctionUrn(emulator.region, emulator.project_id, "default", "greeter")
    assert pushed["deploy_code"][LINK_KEY] == function_console_url(greeter)

    # Run again, as an ops engineer re-triggering the same release: the version is reused, not re-made.
    again = run_dag(example_dag_bag, "functiongraph_release", run_conf={"version": "v2"})
    assert str(again.state) == "success", states(again)
    assert xcoms(again)["publish_version"]["return_value"] == "v2"
