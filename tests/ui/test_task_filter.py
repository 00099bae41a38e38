"""When the view's bounded task-instance filter is exact, and when its rows must be sorted out."""

from __future__ import annotations

from airflow_provider_fgs.ui.catalog import FunctionCall
from airflow_provider_fgs.ui.task_filter import IN_LIST_LIMIT, TaskFilter


def call(dag_id: str, task_id: str, task_type: str = "InvokeFunctionOperator") -> FunctionCall:
    return FunctionCall(dag_id, task_id, task_type, "invoke", "latest", mapped=False, task_type=task_type)


def test_every_call_of_the_deployment_is_exact_without_listing_dags() -> None:
    every = [call(f"dag_{i}", "invoke") for i in range(2 * IN_LIST_LIMIT)]
    tasks = TaskFilter.of(every, every_call=every)
    assert tasks.dag_ids is None  # too many to list: SQL reads by task class and task id
    assert tasks.task_ids == ("invoke",)
    assert tasks.exact


def test_a_task_of_another_function_that_passes_the_lists_makes_it_inexact() -> None:
    # dag_a.second calls another function, but dag_a and "second" are both in the lists.
    wanted = [call("dag_a", "first"), call("dag_b", "second")]
    every = [*wanted, call("dag_a", "second")]
    tasks = TaskFilter.of(wanted, every_call=every)
    assert not tasks.exact
    assert tasks.keeps("dag_b", "second")
    assert not tasks.keeps("dag_a", "second")


def test_a_user_who_reads_part_of_many_dags_gets_an_inexact_filter() -> None:
    every = [call(f"dag_{i}", "invoke") for i in range(3 * IN_LIST_LIMIT)]
    readable = every[: 2 * IN_LIST_LIMIT]
    tasks = TaskFilter.of(readable, every_call=every)
    assert tasks.dag_ids is None
    assert not tasks.exact  # rows of the unreadable DAGs pass SQL: they are dropped one by one
    assert not tasks.keeps(f"dag_{3 * IN_LIST_LIMIT - 1}", "invoke")


def test_no_call_of_a_known_task_class_reads_nothing() -> None:
    assert TaskFilter.of([]).empty
    assert TaskFilter.of([call("d", "t", task_type="")]).empty
