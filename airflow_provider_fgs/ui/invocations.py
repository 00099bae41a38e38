"""Recent invocations from Airflow's own records: task instances, and the XComs that describe each call."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import and_, or_, select

from airflow_provider_fgs.triggers.invocation_report import (
    XCOM_BILLING_DURATION_MS,
    XCOM_ERROR_CODE,
    XCOM_REQUEST_ID,
    XCOM_SUMMARY,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow_provider_fgs.ui.task_filter import TaskFilter

# The XComs a row shows; the function's log and result stay out of the listing (they may be large).
ROW_XCOMS = (XCOM_REQUEST_ID, XCOM_SUMMARY, XCOM_BILLING_DURATION_MS, XCOM_ERROR_CODE)
MAX_PAGE = 100
RECENT_SPANS = (timedelta(days=1), timedelta(days=7), timedelta(days=30))
"""How far back :func:`task_instance_rows` reads, in turn, until the page is full (then everything)."""
SCAN_CHUNK = 500
"""Task-instance rows read per query when the query's narrowing is not exact."""


def recent_invocations(
    session: Session, tasks: TaskFilter, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], bool]:
    """
    The newest task instances of ``tasks`` (latest start first; not started yet last), one page of them,
    each with its invocation's request id, billing, memory and error code; and whether more follow.

    Two queries whatever the page holds (when the filter is exact): the task instances, then their XComs.

    :param session: a database session.
    :param tasks: the invoking tasks to list (already limited to the DAGs the user may read).
    :param limit: rows per page, at most :data:`MAX_PAGE`.
    :param offset: rows to skip.
    """
    page_size = min(limit, MAX_PAGE)
    rows = task_instance_rows(session, tasks, limit=page_size + 1, offset=offset)  # +1: another page?
    page = rows[:page_size]
    xcoms = row_xcoms(session, [ti_key(row) for row in page], ROW_XCOMS)
    return [_invocation(row, xcoms.get(ti_key(row), {})) for row in page], len(rows) > page_size


def task_instance_rows(
    session: Session, tasks: TaskFilter, *, limit: int, offset: int, now: datetime | None = None
) -> list[Any]:
    """
    The newest task instances of ``tasks`` (latest start first; not started yet last), ``limit`` of them
    after the first ``offset``.

    Airflow has no index on a task instance's start: the last day is read first, then the last week,
    month, and all, until the page is full, so that the database sorts a day's rows, not a year's.
    """
    if tasks.empty:
        return []
    now = now or datetime.now(UTC)
    needed = offset + limit
    for span in RECENT_SPANS:
        rows = _newest(session, tasks, needed, since=now - span)
        if len(rows) >= needed:
            return rows[offset:needed]
    return _newest(session, tasks, needed, since=None)[offset:needed]


def _newest(session: Session, tasks: TaskFilter, needed: int, since: datetime | None) -> list[Any]:
    """The ``needed`` newest task instances of ``tasks`` started ``since`` (any start when ``None``)."""
    from airflow.models.taskinstance import TaskInstance as TI

    # The start first: sqlite tests the conditions in this order, and it rules out the most rows.
    started = [] if since is None else [TI.start_date >= since]
    query = (
        select(
            TI.dag_id,
            TI.task_id,
            TI.run_id,
            TI.map_index,
            TI.try_number,
            TI.state,
            TI.start_date,
            TI.end_date,
            TI.duration,
        )
        .where(*started, *tasks.where(TI))
        .order_by(
            TI.start_date.is_(None), TI.start_date.desc(), TI.dag_id, TI.task_id, TI.run_id, TI.map_index
        )
    )
    if tasks.exact:
        return list(session.execute(query.limit(needed)).all())
    chunk = max(needed, SCAN_CHUNK)
    kept: list[Any] = []
    scanned = 0
    while len(kept) < needed:
        rows = session.execute(query.limit(chunk).offset(scanned)).all()
        kept += [row for row in rows if tasks.keeps(row.dag_id, row.task_id)]
        if len(rows) < chunk:
            break
        scanned += len(rows)
    return kept[:needed]


def ti_key(row: Any) -> tuple[str, str, str, int]:
    """A task instance's key as the XCom table has it: DAG, run, task, map index."""
    return (row.dag_id, row.run_id, row.task_id, row.map_index)


def row_xcoms(
    session: Session, keys: Sequence[tuple[str, str, str, int]], names: Sequence[str]
) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    """
    The XComs ``names`` of these task instances (a page of them, at most :data:`MAX_PAGE` + 1), in one
    query that looks each task instance up by the XCom table's index.
    """
    from airflow.models.xcom import XComModel as XCom

    if not keys:
        return {}
    of_the_page = or_(
        *(
            and_(XCom.dag_id == dag, XCom.task_id == task, XCom.run_id == run, XCom.map_index == index)
            for dag, run, task, index in keys
        )
    )
    found = session.execute(
        select(XCom.dag_id, XCom.run_id, XCom.task_id, XCom.map_index, XCom.key, XCom.value).where(
            of_the_page, key_not_indexed(XCom).in_(names)
        )
    ).all()
    by_task: dict[tuple[str, str, str, int], dict[str, Any]] = defaultdict(dict)
    for row in found:
        by_task[ti_key(row)][row.key] = XCom.deserialize_value(row)
    return by_task


def key_not_indexed(xcom: Any) -> Any:
    """
    The XCom key as an expression no index applies to: without statistics (``ANALYZE``), sqlite's
    planner prefers the index on the key alone and reads every XCom with that key (200,000 summaries for
    a page of 25 task instances) instead of each task instance's XComs.
    """
    return xcom.key.concat("")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _invocation(row: Any, xcoms: dict[str, Any]) -> dict[str, Any]:
    found_summary = xcoms.get(XCOM_SUMMARY)
    summary: dict[str, Any] = found_summary if isinstance(found_summary, dict) else {}
    billed_ms = _number(xcoms.get(XCOM_BILLING_DURATION_MS))
    if billed_ms is None:
        billed_ms = _number(summary.get("billingDuration"))
    memory_mb = _number(summary.get("memorySize"))
    return {
        **task_instance_fields(row),
        "end_date": row.end_date.isoformat() if row.end_date else None,
        "request_id": xcoms.get(XCOM_REQUEST_ID),
        "billed_duration_ms": billed_ms,
        "memory_mb": memory_mb,
        "memory_used_mb": _number(summary.get("memoryUsed")),
        "gb_seconds": (
            round(billed_ms / 1000 * memory_mb / 1024, 6) if billed_ms is not None and memory_mb else None
        ),
        # Airflow reads a stored "1" back as 1: codes are strings on the wire (X-Func-Err-Code).
        "error_code": None if xcoms.get(XCOM_ERROR_CODE) is None else str(xcoms[XCOM_ERROR_CODE]),
    }


def task_instance_fields(row: Any) -> dict[str, Any]:
    """What a row of the view says of its task instance (from :func:`task_instance_rows`), with its page."""
    return {
        "dag_id": row.dag_id,
        "task_id": row.task_id,
        "run_id": row.run_id,
        "map_index": row.map_index,
        "try_number": row.try_number,
        "state": None if row.state is None else str(row.state),
        "start_date": row.start_date.isoformat() if row.start_date else None,
        "duration_s": row.duration,
        "ti_url": task_instance_path(row.dag_id, row.run_id, row.task_id, row.map_index),
    }


def task_instance_path(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The task instance's page in the Airflow UI, relative to the UI's root."""
    path = f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id, safe='')}"
    return path if map_index < 0 else f"{path}/mapped/{map_index}"
