"""
Call FunctionGraph from TaskFlow code with the hook, and pass the whole ``InvocationResult`` downstream.

``FunctionGraphHook.invoke`` names the function as the operator does (here ``function_name``; the
connection ``functiongraph_default`` supplies the region and project). The ``InvocationResult`` it returns
goes through XCom as it is (result, log tail, request id, summary); the downstream task raises the
operator's ``FunctionError`` if the function failed, then uses the result.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.protocol.invoke import InvocationResult


@dag(dag_id="functiongraph_taskflow", schedule=None, tags=["example", "functiongraph"], doc_md=__doc__)
def functiongraph_taskflow() -> None:
    @task
    def square(x: int) -> InvocationResult:
        return FunctionGraphHook().invoke(function_name="square", payload={"x": x})

    @task
    def report(invocation: InvocationResult) -> dict[str, Any]:
        invocation.raise_for_function_error()
        return {
            "square": invocation.result["square"],
            "function": invocation.function,
            "request_id": invocation.request_id,
            "log": invocation.log,
        }

    report(square(7))


functiongraph_taskflow()
