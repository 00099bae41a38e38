"""The FunctionGraph view's catalog, built from the example DAGs as Airflow serializes them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_fgs.compat import AIRFLOW_V_3_2_PLUS, dag_bag
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.ui.catalog import FunctionCall, FunctionEntry, build_catalog

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"


def _serialized(dag: Any) -> dict[str, Any]:
    """``dag`` as the DAG processor stores it (``SerializedDagModel.data``)."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.serialization.serialized_objects import DagSerialization
    else:
        from airflow.serialization.serialized_objects import SerializedDAG as DagSerialization
    data: dict[str, Any] = DagSerialization.to_dict(dag)
    return data


@pytest.fixture(scope="module")
def catalog() -> dict[tuple[str, str], FunctionEntry]:
    bag = dag_bag(str(EXAMPLE_DAGS))
    assert not bag.import_errors
    entries = build_catalog((dag_id, _serialized(dag)) for dag_id, dag in bag.dags.items())
    return {entry.key: entry for entry in entries}


def _calls(entry: FunctionEntry) -> set[tuple[str, str, str, str, str, bool]]:
    return {(c.dag_id, c.task_id, c.operator, c.kind, c.target, c.mapped) for c in entry.calls}


def test_a_batch_names_its_function_in_its_invocation(catalog: dict[tuple[str, str], FunctionEntry]) -> None:
    square = catalog[("functiongraph_default", "default/square")]
    batch = [call for call in square.calls if call.dag_id == "functiongraph_batch"]
    assert [(c.task_id, c.operator, c.kind, c.target, c.mapped) for c in batch] == [
        ("square_all", "InvokeFunctionBatchOperator", "batch", "latest", False)
    ]


def test_names_each_function_with_the_tasks_that_call_it(
    catalog: dict[tuple[str, str], FunctionEntry],
) -> None:
    split_words = catalog[("functiongraph_default", "default/split_words")]
    assert _calls(split_words) == {
        ("functiongraph_chain", "split_words", "InvokeFunctionOperator", "invoke", "latest", False),
        ("functiongraph_decorator", "split_words", "@task.functiongraph", "invoke", "latest", False),
    }
    # a mapped task's connection comes from its partial arguments
    fan_out = catalog[("functiongraph_fan_out", "default/square")]
    assert _calls(fan_out) == {
        ("functiongraph_fan_out", "square", "InvokeFunctionOperator", "invoke", "latest", True)
    }


def test_a_function_named_by_a_param_takes_the_params_default(
    catalog: dict[tuple[str, str], FunctionEntry],
) -> None:
    greeter = catalog[("functiongraph_default", "default/greeter")]
    assert not greeter.templated
    kinds = {(c.task_id, c.kind, c.target) for c in greeter.calls}
    assert ("deploy_code", "release", "latest") in kinds
    assert ("wait_for_update", "wait", "latest") in kinds
    assert ("invoke_promoted", "invoke", "!canary") in kinds


def test_tasks_that_are_not_the_providers_are_left_out(catalog: dict[tuple[str, str], FunctionEntry]) -> None:
    tasks = {(c.dag_id, c.task_id) for entry in catalog.values() for c in entry.calls}
    assert ("functiongraph_mapped", "total") not in tasks  # a @task summing the results
    assert all(entry.function.startswith("default/") for entry in catalog.values())


def test_a_search_matches_the_function_name_or_a_calling_dags_id_in_any_case(
    catalog: dict[tuple[str, str], FunctionEntry],
) -> None:
    def found(search: str) -> list[FunctionEntry]:
        return [entry for entry in catalog.values() if entry.matches(search)]

    assert [entry.function for entry in found("SPLIT_")] == ["default/split_words"]
    by_dag = found("functiongraph_chain")
    assert {entry.function for entry in by_dag} >= {"default/split_words", "default/count_words"}
    assert all("functiongraph_chain" in entry.to_dict()["dag_ids"] for entry in by_dag)
    assert found("no such thing") == []


def test_a_urn_gives_package_name_and_version_and_an_unknown_template_stays_one() -> None:
    urn = "urn:fss:ap-southeast-1:0a1b2c3d4e5f60718293a4b5c6d7e8f9:function:tools:resize:3"
    with DAG(dag_id="named_in_ways", schedule=None) as dag:
        InvokeFunctionOperator(task_id="by_urn", function_urn=urn, functiongraph_conn_id="other_account")
        InvokeFunctionOperator(task_id="by_template", function_name="{{ dag_run.conf['fn'] }}")
    entries = {entry.key: entry for entry in build_catalog([("named_in_ways", _serialized(dag))])}
    by_urn = entries[("other_account", "tools/resize")]
    assert [(c.task_id, c.target) for c in by_urn.calls] == [("by_urn", "3")]
    templated = entries[("functiongraph_default", "{{ dag_run.conf['fn'] }}")]
    assert templated.templated


def test_loading_the_plugin_imports_nothing_of_the_api_server() -> None:
    # Every Airflow process loads plugins, task processes too: the view's app is built at its first request.
    code = (
        "import sys\n"
        "from airflow_provider_fgs.ui.plugin import FunctionGraphPlugin\n"
        "assert FunctionGraphPlugin.fastapi_apps[0]['url_prefix'] == '/functiongraph'\n"
        "heavy = [m for m in ('fastapi', 'airflow.api_fastapi.core_api.security') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


def test_airflow_finds_the_plugin_through_its_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "plugins", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    listed = json.loads(done.stdout[done.stdout.index("[") :])
    (plugin,) = [p for p in listed if p["name"] == "functiongraph"]
    assert "airflow.plugins" in plugin["source"]
    assert "/functiongraph/" in str(plugin["external_views"])
    assert "/functiongraph" in str(plugin["fastapi_apps"])


def test_a_function_called_by_many_dags_lists_its_first_calls_and_counts_them_all() -> None:
    calls = [
        FunctionCall(f"dag_{i:04d}", "invoke", "InvokeFunctionOperator", "invoke", "latest", False)
        for i in range(600)
    ]
    entry = FunctionEntry("functiongraph_default", "default/busy", calls=calls)
    shown = entry.to_dict(calls_limit=25)
    assert (shown["dag_count"], shown["calls_total"]) == (600, 600)
    assert [call["dag_id"] for call in shown["calls"]] == [f"dag_{i:04d}" for i in range(25)]
    assert shown["dag_ids"] == [f"dag_{i:04d}" for i in range(25)]
    assert len(entry.to_dict()["calls"]) == 600
