"""Durable send claims: how a trigger that is started again knows an earlier run of it may have sent.

A trigger handed to another triggerer (after SIGTERM/SIGKILL, a missed heartbeat, or while two
triggerers briefly run it at once) starts again from the top of ``run()``. Before a trigger sends a
request that must not be sent twice, it takes a claim in an XCom of its own task instance, saying until
when it may still wait for the answer (``until``: the attempt's connect and read timeouts from now; a
retry writes a new one); after the response it writes the outcome (the event it is about to fire) into
the same XCom. A run that finds a claim for the same try does not send: it fires the recorded outcome,
waits for it while the claim is live (before its ``until``), and fails safe once it is not (its sender
is gone and may have sent). While a request is in flight, nothing is written: a triggerer waiting for a
thousand answers makes no requests to its supervisor.

Taking the claim must hold when two runs start at once, and XCom offers only reads and writes (no
compare-and-set). :func:`take_claim` is therefore a splitter (Moir and Anderson, 1995) over two XComs:
the run announces itself in the contender XCom, checks that no claim exists, writes its claim, then
checks that it is still the last contender. Of any number of runs at most one gets through (the last to
announce itself, if it also passed the check); a run alone always does; the others follow the claim.
Two runs can both lose (then neither sends and, the claim going stale, the task fails safe).

The XComs go through the triggerer's supervisor to the Execution API (``GetXCom``/``SetXCom``, present
in the trigger runner of Airflow 3.1, 3.2 and 3.3), i.e. into the metadata database, which outlives
any triggerer. A worker clears a task's XComs when it starts a new try, never when a deferred task
resumes (and no worker starts a try that the scheduler starts in the triggerer); every record also holds
its try number, so a record left by another try is ignored. Claims are timed with the triggerers' clocks
(``time.time()``), which are assumed to agree within seconds.

A worker that defers writes an *open* claim first (:func:`open_claim`): the trigger's first read then
finds a record instead of a missing XCom, which Airflow's Task SDK logs at error level.

A run that holds the claim and is cancelled before it starts sending (its triggerer lost the trigger to
another one, e.g. after a missed heartbeat) *releases* it (:func:`release_claim`): a released claim is
taken like an open one, so the run that took over invokes instead of failing safe.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from airflow_provider_fgs.triggers.supervisor import TaskTry, get_task_xcom, set_task_xcom

__all__ = [
    "CLAIM_SLACK_S",
    "CLAIM_STALE_AFTER_S",
    "CLAIM_XCOM_KEY",
    "CONTENDER_XCOM_KEY",
    "FOLLOW_POLL_S",
    "Taken",
    "TaskTry",
    "claim_is_live",
    "is_released",
    "new_nonce",
    "open_claim",
    "read_claim",
    "release_claim",
    "take_claim",
    "write_claim",
]

CLAIM_XCOM_KEY = "functiongraph_invoke_claim"
"""The XCom key of the claim, on the deferred task instance itself."""
CONTENDER_XCOM_KEY = "functiongraph_invoke_contender"
"""The XCom key where each run about to take the claim writes its nonce (the splitter's race register)."""
FOLLOW_POLL_S = 10.0
"""How often a run that follows another run's claim reads it again."""
CLAIM_SLACK_S = 10.0
"""Seconds past a claim's ``until`` before it is taken for stale (the triggerers' clocks may differ)."""
CLAIM_STALE_AFTER_S = 30.0
"""A claim without ``until`` (an earlier provider version's) is stale this long after it was written."""


OPEN = "open"
"""The state of a claim that a worker wrote before deferring: nobody has taken it yet."""
RELEASED = "released"
"""The state of a claim given up by a run cancelled before it sent: free to take, like an open one."""
FREE_STATES = (OPEN, RELEASED)


async def _read(task_try: TaskTry, key: str) -> dict[str, Any] | None:
    value = await get_task_xcom(task_try, key)
    if not isinstance(value, dict) or value.get("try_number") != task_try.try_number:
        return None
    return value


async def _write(task_try: TaskTry, key: str, record: dict[str, Any]) -> None:
    value = {"try_number": task_try.try_number, "written_at": time.time(), **record}
    await set_task_xcom(task_try, key, value)


def open_claim(try_number: int) -> dict[str, Any]:
    """The open claim a worker writes (XCom :data:`CLAIM_XCOM_KEY`) just before deferring ``try_number``."""
    return {"try_number": try_number, "written_at": time.time(), "state": OPEN}


async def read_claim(task_try: TaskTry) -> dict[str, Any] | None:
    """The claim taken for ``task_try``, or ``None`` (none, an open one, or another try's is ignored)."""
    claim = await _read(task_try, CLAIM_XCOM_KEY)
    return None if claim is None or claim.get("state") == OPEN else claim


async def write_claim(task_try: TaskTry, **record: Any) -> None:
    """Record ``record`` (JSON-serializable) as the claim of ``task_try``, replacing any earlier one."""
    await _write(task_try, CLAIM_XCOM_KEY, record)


async def release_claim(task_try: TaskTry, nonce: str, **record: Any) -> None:
    """
    Give up the claim that the run ``nonce`` took and has not sent under (it never will): the next run
    to take the claim may send.
    """
    await write_claim(task_try, **{**record, "state": RELEASED, "nonce": nonce})


def is_released(claim: dict[str, Any]) -> bool:
    """Whether ``claim`` was given up by a run that never sent (see :func:`release_claim`)."""
    return claim.get("state") == RELEASED


def new_nonce() -> str:
    """A value that tells this run's claim from any other run's."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Taken:
    """
    What :func:`take_claim` found.

    :param claim: ``None`` when this run holds the claim and may send; otherwise the claim to follow
        (another run holds it, or takes it at the same time).
    :param earlier_try: the try number of a claim found in place of this try's: that try's XComs were
        never cleared (the scheduler started this try in the triggerer, without a worker).
    """

    claim: dict[str, Any] | None
    earlier_try: int | None = None


async def take_claim(task_try: TaskTry, nonce: str, **record: Any) -> Taken:
    """Take the claim of ``task_try`` for the run identified by ``nonce`` (the splitter of the module doc)."""
    await _write(task_try, CONTENDER_XCOM_KEY, {"nonce": nonce})
    found = await get_task_xcom(task_try, CLAIM_XCOM_KEY)
    earlier = found.get("try_number") if isinstance(found, dict) else None
    if not isinstance(earlier, int) or earlier >= task_try.try_number:
        earlier = None
    if (
        isinstance(found, dict)
        and found.get("try_number") == task_try.try_number
        and found.get("state") not in FREE_STATES
    ):
        return Taken(found)
    mine = {"state": "sent", "nonce": nonce, **record}
    if earlier is not None:
        mine["after_try"] = earlier  # the XComs of that try are still there: none can tell this try's outcome
    await write_claim(task_try, **mine)
    contender = await _read(task_try, CONTENDER_XCOM_KEY)
    if contender is not None and contender.get("nonce") == nonce:
        return Taken(None, earlier_try=earlier)
    # Another run announced itself after this one: it may get through, so this one must not send.
    return Taken(await read_claim(task_try) or {"try_number": task_try.try_number, **mine})


def claim_is_live(claim: dict[str, Any], now: float | None = None) -> bool:
    """Whether the run that holds ``claim`` may still be waiting for its answer (never, with an outcome)."""
    if claim.get("state") != "sent" or not claim.get("nonce"):
        return False
    now = time.time() if now is None else now
    until = claim.get("until")
    if isinstance(until, int | float):
        return now <= until + CLAIM_SLACK_S
    written_at = claim.get("written_at")
    if not isinstance(written_at, int | float):
        return False
    return now - written_at <= CLAIM_STALE_AFTER_S
