"""Running and recent batches: their task instances, the ``summary`` of those that ended, the ledger's
counts of those still running (the batch's Variable, :mod:`~airflow_provider_fgs.triggers.batch_store`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from airflow_provider_fgs.protocol import batch as b
from airflow_provider_fgs.triggers.batch_store import RUNNING, SUMMARY_XCOM, ledger_prefix
from airflow_provider_fgs.triggers.supervisor import TaskTry
from airflow_provider_fgs.ui.invocations import (
    MAX_PAGE,
    row_xcoms,
    task_instance_fields,
    task_instance_rows,
    ti_key,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow_provider_fgs.ui.task_filter import TaskFilter

LEDGER_NAME = "ledger"


def recent_batches(
    session: Session, tasks: TaskFilter, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], bool]:
    """
    The newest task instances of the batch tasks (latest start first), one page of them, each with its
    counts by outcome and how far it got; and whether more follow. Three queries whatever the page holds:
    the task instances, their ``summary`` XComs, and the ledgers of those still running.
    """
    page_size = min(limit, MAX_PAGE)
    rows = task_instance_rows(session, tasks, limit=page_size + 1, offset=offset)
    page = rows[:page_size]
    summaries = row_xcoms(session, [ti_key(row) for row in page], (SUMMARY_XCOM,))
    ended = {ti_key(row): summaries.get(ti_key(row), {}).get(SUMMARY_XCOM) for row in page}
    running = [row for row in page if not _has_ended(ended[ti_key(row)])]
    ledgers = _ledgers(session, running)
    batches = [_batch(row, ended[ti_key(row)], ledgers.get(_ledger_key(row))) for row in page]
    return batches, len(rows) > page_size


def _has_ended(summary: Any) -> bool:
    return isinstance(summary, dict) and "items" in summary and summary.get("status") != RUNNING


def _ledger_key(row: Any) -> str:
    task_try = TaskTry(row.dag_id, row.run_id, row.task_id, row.map_index, int(row.try_number or 0))
    return ledger_prefix(task_try) + LEDGER_NAME


def _ledgers(session: Session, rows: list[Any]) -> dict[str, dict[str, Any]]:
    """The ledger records of these task instances' batches (decrypted as Airflow stores Variables)."""
    from airflow.models.variable import Variable

    if not rows:
        return {}
    found = session.scalars(select(Variable).where(Variable.key.in_([_ledger_key(row) for row in rows])))
    ledgers = {}
    for variable in found:
        try:
            ledgers[variable.key] = json.loads(variable.val or "")
        except ValueError:
            continue
    return ledgers


def _batch(row: Any, summary: Any, ledger: dict[str, Any] | None) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    items = None
    if _has_ended(summary):
        items = summary.get("items")
        counts = {outcome: summary.get(outcome, 0) for outcome in b.OUTCOMES}
        status = summary.get("status")
    elif ledger is not None:
        tally = b.Tally.from_dict(ledger.get("tally") or {"items": ledger.get("items", 0)})
        items = tally.items
        counts = {outcome: tally.counts.get(outcome, 0) for outcome in b.OUTCOMES if outcome != b.NOT_STARTED}
        counts[b.NOT_STARTED] = tally.items - tally.ended
        status = RUNNING if (ledger.get("done") or {}).get("status") is None else ledger["done"]["status"]
    else:
        status = None
    ended = sum(count for outcome, count in counts.items() if outcome != b.NOT_STARTED)
    return {
        **task_instance_fields(row),
        "status": status,
        "items": items,
        "ended": ended if items is not None else None,
        "counts": counts,
        "wall_seconds": summary.get("wall_seconds") if _has_ended(summary) else None,
        "gb_seconds": summary.get("gb_seconds") if _has_ended(summary) else None,
    }
