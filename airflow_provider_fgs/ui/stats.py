"""
Invocations over time, for the view's charts: per interval, how many ended by outcome, the function's
duration (p50, p95) and the billed GB-s, from Airflow's task instances and the XComs the operator pushes.

Two queries whatever the window and the number of task instances, aggregated by the database: the ended
task instances by state with their invoke summaries (duration histogram, GB-s), and the error XComs of
the failed ones. The intervals and the duration bins are ``CASE`` expressions over a fixed number of
bounds, so the same SQL runs on sqlite, PostgreSQL and MySQL. An interval that ended over an hour ago
is settled: each API-server process keeps its tally for ten minutes, so a chart reads only its recent
intervals again.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, literal, select

from airflow_provider_fgs.triggers.invocation_report import XCOM_ERROR_CODE, XCOM_ERROR_TYPE, XCOM_SUMMARY
from airflow_provider_fgs.ui.invocations import key_not_indexed

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow_provider_fgs.ui.task_filter import TaskFilter


@dataclass(frozen=True)
class Window:
    """
    The time a chart covers, in equal intervals ending with the current one.

    :param name: how the API and the page name it (``24h``, ``7d``, ``30d``).
    :param span: how far back it reaches.
    :param step: the length of one interval.
    """

    name: str
    span: timedelta
    step: timedelta

    @property
    def intervals(self) -> int:
        return int(self.span / self.step)

    def bounds(self, now: datetime) -> list[datetime]:
        """The intervals' ``intervals + 1`` bounds (UTC): the last interval holds ``now``."""
        step_s = self.step.total_seconds()
        end = datetime.fromtimestamp((math.floor(now.timestamp() / step_s) + 1) * step_s, tz=UTC)
        return [end - self.span + self.step * i for i in range(self.intervals + 1)]


WINDOWS = {
    window.name: window
    for window in (
        Window("24h", timedelta(hours=24), timedelta(hours=1)),
        Window("7d", timedelta(days=7), timedelta(hours=6)),
        Window("30d", timedelta(days=30), timedelta(days=1)),
    )
}
OUTCOMES = ("success", "function_error", "platform_error", "outcome_unknown")
DURATION_BOUNDS_MS = (
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
)
"""Upper bounds of the duration histogram's bins (the function's own duration, in ms); one bin is above."""
ENDED_STATES = ("success", "failed", "up_for_retry")
FAILED_STATES = ("failed", "up_for_retry")
FUNCTION_ERRORS = frozenset({"FunctionError", "ResultCheckError"})


def failure_outcome(error_type: Any, error_code: Any) -> str:
    """The outcome of a failed invocation task from its ``error_type`` and ``error_code`` XComs."""
    if error_type == "InvocationOutcomeUnknownError":
        return "outcome_unknown"
    if error_type in FUNCTION_ERRORS or (error_type is None and error_code is not None):
        return "function_error"
    return "platform_error"


def percentile_ms(histogram: list[int], quantile: float) -> float | None:
    """The ``quantile`` of a :data:`DURATION_BOUNDS_MS` histogram, linear within its bin."""
    total = sum(histogram)
    if not total:
        return None
    target = quantile * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= target:
            low = DURATION_BOUNDS_MS[index - 1] if index else 0
            if index == len(DURATION_BOUNDS_MS):  # above the last bound: that bound is all it can say
                return float(low)
            high = DURATION_BOUNDS_MS[index]
            return round(low + (high - low) * (target - seen) / count, 3)
        seen += count
    return float(DURATION_BOUNDS_MS[-1])


@dataclass
class Tally:
    """One interval's invocations: ended ones by outcome, the function's durations, the GB-s billed."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    histogram: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BOUNDS_MS) + 1))
    gb_seconds: float = 0.0

    def to_dict(self, start: datetime) -> dict[str, Any]:
        return {
            "start": start.isoformat(),
            **self.counts,
            "p50_ms": percentile_ms(self.histogram, 0.5),
            "p95_ms": percentile_ms(self.histogram, 0.95),
            "gb_seconds": round(self.gb_seconds, 6),
        }


SETTLE = timedelta(hours=1)
"""An interval that ended this long ago is *settled*: its invocations have ended, its tally is kept."""
SETTLED_SECONDS = 600.0
"""How long an API-server process keeps a settled interval's tally (a task cleared and run again in it
shows within that time)."""


class SettledTallies:
    """The tallies of settled intervals, per API-server process: a chart reads only its recent intervals."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, Tally]] = OrderedDict()
        self._max_entries = max_entries

    def get(self, key: tuple[Any, ...]) -> Tally | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None or time.monotonic() - found[0] > SETTLED_SECONDS:
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put(self, key: tuple[Any, ...], tally: Tally) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic(), tally)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)


SETTLED = SettledTallies()


def invocation_stats(
    session: Session, tasks: TaskFilter, window: Window, now: datetime, settled: SettledTallies | None = None
) -> dict[str, Any]:
    """
    The charts' series: per interval of ``window`` (by task start), the ended invocations by outcome,
    the function's duration p50 and p95 (ms) and the billed GB-s. The intervals that are settled come
    from ``settled`` (the process's, by default) when it has them; the others are read, in two queries.

    :param tasks: the invoking tasks to count (already limited to the DAGs the user may read).
    """
    kept = SETTLED if settled is None else settled
    bounds = window.bounds(now)
    tallies: list[Tally | None] = [None] * window.intervals
    keys = [(tasks.digest, window.step, bounds[i]) for i in range(window.intervals)]
    is_settled = [bounds[i + 1] <= now - SETTLE for i in range(window.intervals)]
    for index in range(window.intervals):
        if is_settled[index]:
            tallies[index] = kept.get(keys[index])
    first_missing = next((i for i, tally in enumerate(tallies) if tally is None), window.intervals)
    if first_missing < window.intervals:
        for offset, tally in enumerate(read_tallies(session, tasks, bounds[first_missing:])):
            index = first_missing + offset
            tallies[index] = tally
            if is_settled[index]:
                kept.put(keys[index], tally)
    read = [tally or Tally() for tally in tallies]
    return {
        "window": window.name,
        "step_seconds": int(window.step.total_seconds()),
        "start": bounds[0].isoformat(),
        "end": bounds[-1].isoformat(),
        "intervals": [tally.to_dict(bounds[index]) for index, tally in enumerate(read)],
        "totals": {
            **{outcome: sum(tally.counts[outcome] for tally in read) for outcome in OUTCOMES},
            "gb_seconds": round(sum(tally.gb_seconds for tally in read), 6),
        },
    }


def read_tallies(session: Session, tasks: TaskFilter, bounds: list[datetime]) -> list[Tally]:
    """The tallies of the intervals between consecutive ``bounds``, read from the database."""
    from airflow.models.taskinstance import TaskInstance as TI

    tallies = [Tally() for _ in bounds[1:]]
    if tasks.empty:
        return tallies
    inner_bounds = bounds[1:-1]
    interval = (
        case(
            *((TI.start_date < bound, index) for index, bound in enumerate(inner_bounds)),
            else_=len(inner_bounds),
        )
        if inner_bounds
        else literal(0)  # one interval: a CASE needs a WHEN
    ).label("interval")
    # The window first: sqlite tests the conditions in this order, and it rules out the most rows.
    scope = [TI.start_date >= bounds[0], TI.start_date < bounds[-1], *tasks.where(TI)]
    failed = _add_ended(session, tasks, interval, scope, tallies)
    _sort_failures(session, tasks, interval, scope, tallies, failed)
    return tallies


def _pair(tasks: TaskFilter, task_instance: Any) -> list[Any]:
    """The columns to group by besides the interval: the pair, when rows must be sorted out one by one."""
    return [] if tasks.exact else [task_instance.dag_id, task_instance.task_id]


def _add_ended(
    session: Session, tasks: TaskFilter, interval: Any, scope: list[Any], tallies: list[Tally]
) -> list[int]:
    """
    Add the ended invocations: successes, and the function's durations and GB-s from the invoke summaries
    (joined to each task instance in scope by the XCom table's index). Returns the failed ones per
    interval, sorted out next.
    """
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.xcom import XComModel as XCom

    pair = _pair(tasks, TI)
    ended = (
        select(interval, TI.state, XCom.value.label("summary"), *pair)
        .outerjoin(XCom, and_(_xcom_of(TI, XCom), key_not_indexed(XCom) == XCOM_SUMMARY))
        .where(*scope, TI.state.in_(ENDED_STATES))
    )
    rows_of = ended.subquery()
    duration = rows_of.c.summary["duration"].as_float()
    billed_mb_ms = (
        rows_of.c.summary["billingDuration"].as_float() * rows_of.c.summary["memorySize"].as_float()
    )
    duration_bin = case(
        (duration.is_(None), -1),
        *((duration < bound, index) for index, bound in enumerate(DURATION_BOUNDS_MS)),
        else_=len(DURATION_BOUNDS_MS),
    ).label("duration_bin")
    grouped_pair = [rows_of.c.dag_id, rows_of.c.task_id] if pair else []
    rows = session.execute(
        select(
            rows_of.c.interval,
            rows_of.c.state,
            duration_bin,
            func.count().label("n"),
            func.sum(billed_mb_ms).label("mb_ms"),
            *grouped_pair,
        ).group_by(rows_of.c.interval, rows_of.c.state, duration_bin, *grouped_pair)
    ).all()
    failed = [0] * len(tallies)
    for row in rows:
        if pair and not tasks.keeps(row.dag_id, row.task_id):
            continue
        tally = tallies[row.interval]
        if str(row.state) == "success":
            tally.counts["success"] += row.n
        else:
            failed[row.interval] += row.n
        if row.duration_bin >= 0:
            tally.histogram[row.duration_bin] += row.n
        tally.gb_seconds += (row.mb_ms or 0.0) / 1024 / 1000
    return failed


def _sort_failures(
    session: Session,
    tasks: TaskFilter,
    interval: Any,
    scope: list[Any],
    tallies: list[Tally],
    failed: list[int],
) -> None:
    """Sort the failed invocations by outcome from their ``error_type`` and ``error_code`` XComs."""
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.xcom import XComModel as XCom

    error_keys = key_not_indexed(XCom).in_((XCOM_ERROR_TYPE, XCOM_ERROR_CODE))
    rows = session.execute(
        select(interval, TI.dag_id, TI.task_id, TI.run_id, TI.map_index, XCom.key, XCom.value)
        .join(XCom, and_(_xcom_of(TI, XCom), error_keys))
        .where(*scope, TI.state.in_(FAILED_STATES))
    ).all()
    found: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(dict)
    for row in rows:
        if tasks.keeps(row.dag_id, row.task_id):
            task_instance = (row.interval, row.dag_id, row.task_id, row.run_id, row.map_index)
            found[task_instance][row.key] = XCom.deserialize_value(row)
    for key, xcoms in found.items():
        outcome = failure_outcome(xcoms.get(XCOM_ERROR_TYPE), xcoms.get(XCOM_ERROR_CODE))
        if outcome != "platform_error":
            tallies[key[0]].counts[outcome] += 1
            failed[key[0]] -= 1
    for tally, remaining in zip(tallies, failed, strict=True):  # no XCom says otherwise: the call failed
        tally.counts["platform_error"] += max(remaining, 0)


def _xcom_of(task_instance: Any, xcom: Any) -> Any:
    """The join of a task instance to its XComs."""
    return and_(
        xcom.dag_id == task_instance.dag_id,
        xcom.run_id == task_instance.run_id,
        xcom.task_id == task_instance.task_id,
        xcom.map_index == task_instance.map_index,
    )
