"""Reading a ``dag.test()`` run back from the metadata DB: task states, XComs, rendered fields."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


def serialize(dag: Any) -> None:
    """Write a test-defined DAG to the metadata DB, as the DAG processor does (``dag.test()`` needs it)."""
    from airflow_provider_fgs.compat import store_dag

    store_dag(dag)


def run_dag(bag: Any, dag_id: str, **kwargs: Any) -> Any:
    return bag.get_dag(dag_id).test(**kwargs)


def states(run: Any) -> dict[str, str]:
    """``task_id`` (``task_id[i]`` when mapped) -> final state."""
    result = {}
    for ti in run.get_task_instances():
        name = f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id
        result[name] = str(ti.state)
    return result


def xcoms(run: Any) -> dict[str, dict[str, Any]]:
    """``task_id`` (``task_id[i]`` when mapped) -> {key: value} from the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    result: dict[str, dict[str, Any]] = defaultdict(dict)
    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id)
        ).all()
        found = [(row.task_id, row.map_index, row.key, XComModel.deserialize_value(row)) for row in rows]
    for task_id, map_index, key, value in found:
        name = f"{task_id}[{map_index}]" if map_index >= 0 else task_id
        result[name][key] = value
    return dict(result)


def rendered_fields(run: Any, task_id: str) -> dict[str, Any]:
    """The task's rendered template fields, as the UI shows them."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rtif
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        fields = session.scalar(
            select(Rtif.rendered_fields).where(
                Rtif.dag_id == run.dag_id, Rtif.run_id == run.run_id, Rtif.task_id == task_id
            )
        )
    assert isinstance(fields, dict)
    return fields
