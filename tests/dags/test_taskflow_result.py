"""
A TaskFlow task returns the hook's ``InvocationResult`` and a downstream task receives it: the example DAG
``functiongraph_taskflow`` with real ``dag.test()`` against the emulator.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.dags.dagrun import run_dag, states, xcoms

pytestmark = pytest.mark.usefixtures("emulator_connection")


def test_invocation_result_feeds_a_downstream_task(example_dag_bag: Any, emulator: Any) -> None:
    from airflow_provider_fgs.compat import conf
    from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
    from airflow_provider_fgs.protocol.invoke import InvocationResult

    # Nothing in the configuration allows the class: importing the provider does.
    assert "airflow_provider_fgs" not in conf.get("core", "allowed_deserialization_classes")
    before = emulator.invocation_count("square")

    run = run_dag(example_dag_bag, "functiongraph_taskflow")

    assert states(run) == {"square": "success", "report": "success"}
    assert emulator.invocation_count("square") == before + 1
    pushed = xcoms(run)
    # Stored with Airflow's versioned serialization, as the metadata DB holds it.
    sent = pushed["square"]["return_value"]
    assert sent["__classname__"] == f"{InvocationResult.__module__}.InvocationResult"
    assert sent["__version__"] == InvocationResult.__version__
    received = pushed["report"]["return_value"]
    assert received["square"] == 49
    assert received["request_id"] == sent["__data__"]["request_id"]
    assert received["function"] == str(FunctionGraphHook().resolve_urn(function_name="square"))
    assert "squaring 7" in received["log"]
