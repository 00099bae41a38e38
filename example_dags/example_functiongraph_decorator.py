"""
TaskFlow with ``@task.functiongraph``: the decorated function returns the payload, the task returns the
function's result.

``split_words`` turns the run's text into words; ``lengths`` (plain ``@task``) measures them; ``square``
invokes the ``square`` function once per length (mapped, and deferred: each waits in the triggerer);
``total`` adds the squares. Each ``@task.functiongraph`` task pushes the same XComs as
``InvokeFunctionOperator`` (``request_id``, ``log``, ``summary``, ``billing_duration_ms``) and fails
the same way when the function fails.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task


@dag(
    dag_id="functiongraph_decorator",
    schedule=None,
    params={"text": "to be or not to be"},
    tags=["example", "functiongraph"],
    doc_md=__doc__,
)
def functiongraph_decorator() -> None:
    @task.functiongraph(function_name="split_words")
    def split_words(params: dict[str, Any]) -> dict[str, Any]:
        return {"text": params["text"]}

    @task
    def lengths(split: dict[str, Any]) -> list[int]:
        return [len(word) for word in split["words"]]

    @task.functiongraph(function_name="square", deferrable=True)
    def square(x: int) -> dict[str, Any]:
        return {"x": x}

    @task
    def total(squares: list[dict[str, Any]]) -> int:
        return sum(result["square"] for result in squares)

    total(square.expand(x=lengths(split_words())))


functiongraph_decorator()
