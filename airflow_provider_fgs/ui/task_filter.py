"""Which task instances a query of the view reads: a SQL filter of bounded size, then exact pairs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import select

from airflow_provider_fgs.ui.catalog import FunctionCall

IN_LIST_LIMIT = 500
"""Most values in one ``IN`` list of the view's queries; a longer list is applied to the rows read."""


@dataclass(frozen=True)
class TaskFilter:
    """
    The task instances of some calls, as a SQL filter that does not grow with the DAGs.

    SQL selects the task instances of the calls' task classes (Airflow records each one's class in
    ``operator``), narrowed to the calls' DAGs and task ids while each list is short. The filter is
    *exact* when no current task outside the calls passes it; otherwise the rows read are kept by
    :meth:`keeps`.

    :param wanted: the (DAG, task) pairs of the calls.
    :param task_types: the calls' task classes.
    :param dag_ids: the DAGs SQL narrows to, or ``None`` when there are too many to list.
    :param task_ids: the task ids SQL narrows to, or ``None`` when there are too many to list.
    :param exact: whether every row SQL selects is one of ``wanted`` (for the current DAGs' tasks).
    """

    wanted: frozenset[tuple[str, str]]
    task_types: tuple[str, ...]
    dag_ids: tuple[str, ...] | None
    task_ids: tuple[str, ...] | None
    exact: bool

    @classmethod
    def of(cls, calls: Iterable[FunctionCall], every_call: Iterable[FunctionCall] = ()) -> TaskFilter:
        """
        The filter of ``calls``; ``every_call`` (every current DAG's calls of the same kinds, readable or
        not) tells whether it is exact (with none given, it is taken as not).
        """
        calls = list(calls)
        wanted = frozenset((call.dag_id, call.task_id) for call in calls)
        task_types = tuple(sorted({call.task_type for call in calls if call.task_type}))
        dag_ids = tuple(sorted({dag_id for dag_id, _ in wanted}))
        task_ids = tuple(sorted({task_id for _, task_id in wanted}))
        narrowed_dags = dag_ids if len(dag_ids) <= IN_LIST_LIMIT else None
        narrowed_tasks = task_ids if len(task_ids) <= IN_LIST_LIMIT else None
        types, dags, tasks = set(task_types), set(narrowed_dags or ()), set(narrowed_tasks or ())
        passing = [
            (call.dag_id, call.task_id)
            for call in every_call
            if call.task_type in types
            and (narrowed_dags is None or call.dag_id in dags)
            and (narrowed_tasks is None or call.task_id in tasks)
        ]
        exact = bool(passing) and all(pair in wanted for pair in passing)
        return cls(wanted, task_types, narrowed_dags, narrowed_tasks, exact=exact)

    @cached_property
    def digest(self) -> str:
        """What tells this filter's task instances from another's (a key of what is kept of them)."""
        text = json.dumps([sorted(self.wanted), self.task_types, self.exact])
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def empty(self) -> bool:
        """Whether no task instance can pass (no call, or none of a known task class)."""
        return not self.wanted or not self.task_types

    def where(self, task_instance: Any) -> list[Any]:
        """The SQL conditions on ``task_instance`` (Airflow's ``TaskInstance`` model)."""
        from airflow.models.dag import DagModel

        conditions = [task_instance.operator.in_(self.task_types)]
        if self.dag_ids is not None:
            conditions.append(task_instance.dag_id.in_(self.dag_ids))
        else:  # the current DAGs: those whose files were deleted are not in the catalog
            current = select(DagModel.dag_id).where(DagModel.is_stale.is_(False))
            # Not through an index: probing it once per DAG (5,000) costs sqlite 3x a scan of the table.
            conditions.append(task_instance.dag_id.concat("").in_(current))
        if self.task_ids is not None:
            conditions.append(task_instance.task_id.in_(self.task_ids))
        return conditions

    def keeps(self, dag_id: str, task_id: str) -> bool:
        """Whether a row SQL selected is one of the calls' task instances."""
        return self.exact or (dag_id, task_id) in self.wanted
