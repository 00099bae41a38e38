"""The ledger of a batch: what each item became, kept where it outlives a crashed process.

The ledger is one JSON record in a :class:`BatchStore` (Airflow Variables in the provider), rewritten at
each checkpoint, with the successful results of the items it records beside it in append-only chunks
when no results file takes them. Its rules make the batch at most once per item:

- an item is invoked only while the last record written says it is *claimed* (``?``), so after a crash
  every claimed item may have run; items are claimed a block at a time, not one by one;
- one run owns the batch: the record names it (``owner``) and how long its lease lasts (renewed at each
  checkpoint); another run waits while the lease is live, then takes over. Taking the batch over uses
  the splitter of :mod:`~airflow_provider_fgs.triggers.claims` (a contender record, then a check), so of
  runs starting at once at most one gets it. Before each checkpoint the owner reads the record back and
  stops if another run took over (its lease ran out while it was paused);
- a run that takes over (a restarted triggerer, a worker's next try) turns the items claimed by the run
  before into *outcome unknown*, unless the function is declared idempotent.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_fgs.protocol import batch as b

LEASE_S = 30.0
"""How long an owner's lease lasts after each checkpoint (checkpoints come every few seconds)."""
LEASE_SLACK_S = 10.0
"""Seconds past a lease before another run takes it for lapsed (the processes' clocks may differ)."""
LEDGER = "ledger"
CONTENDER = "contender"
VERSION = 1


class BatchStore(Protocol):
    """Named JSON records that outlive the process running the batch (missing ones read as ``None``)."""

    async def get(self, name: str) -> Any: ...

    async def put(self, name: str, value: Any) -> None: ...

    async def delete(self, name: str) -> None: ...

    def where(self) -> str:
        """Where the records are, for log lines (e.g. the Variable key)."""
        ...


class LostOwnershipError(RuntimeError):
    """Another run took the batch over: this run must not invoke anything more."""


def results_chunk(number: int) -> str:
    """The record name of results chunk ``number``."""
    return f"results.{number}"


@dataclass
class Ledger:
    """
    The in-memory ledger of one batch run.

    :param items: the batch's size.
    :param function: the invoked function's URN.
    :param fingerprint: identifies the input (a ledger of another input is not resumed).
    :param try_number: the task try running the batch.
    :param owner: this run's nonce.
    :param states: one state byte per item (:mod:`~airflow_provider_fgs.protocol.batch`).
    :param tally: counts by outcome, billing.
    :param chunks: results chunks written so far.
    :param recent: successful results that are in no chunk yet (they ride in the record itself).
    :param started_at: when the batch first started (epoch seconds).
    :param done: the recorded end of the batch, once it ended.
    """

    items: int
    function: str
    fingerprint: str
    try_number: int
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    states: bytearray = field(default_factory=bytearray)
    tally: b.Tally | None = None
    chunks: int = 0
    recent: dict[int, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    done: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.states:
            self.states = bytearray([b.NOT_STARTED_STATE]) * self.items
        if self.tally is None:
            self.tally = b.Tally(self.items)

    def record(self, *, lease_s: float = LEASE_S) -> dict[str, Any]:
        """The ledger's record as it is now, with this run's lease renewed."""
        assert self.tally is not None
        now = time.time()
        return {
            "version": VERSION,
            "function": self.function,
            "items": self.items,
            "fingerprint": self.fingerprint,
            "try_number": self.try_number,
            "owner": self.owner,
            "lease_until": now + lease_s,
            "states": b.encode_states(self.states),
            "tally": self.tally.to_dict(),
            "chunks": self.chunks,
            "recent": {str(index): result for index, result in self.recent.items()},
            "started_at": self.started_at,
            "updated_at": now,
            "done": self.done,
        }

    @classmethod
    def resumed(cls, record: Mapping[str, Any], *, try_number: int, idempotent: bool) -> tuple[Ledger, int]:
        """
        The ledger of an earlier run, taken over by this one: ``(ledger, items now outcome unknown)``.

        Items the earlier run had claimed may have run: they become *outcome unknown*, or are invoked again
        for an idempotent function. A new try also invokes again what did not run (a refused call) and,
        for an idempotent function, everything that did not succeed.
        """
        items = int(record["items"])
        states = b.decode_states(str(record["states"]), items)
        new_try = int(record.get("try_number") or 0) != try_number
        unknown = 0
        for index, state in enumerate(states):
            if state == b.CLAIMED_STATE:
                states[index] = b.NOT_STARTED_STATE if idempotent else b.STATE_OF[b.OUTCOME_UNKNOWN]
                unknown += 0 if idempotent else 1
            elif new_try and state != b.STATE_OF[b.SUCCESS] and (idempotent or not b.may_have_run(state)):
                states[index] = b.NOT_STARTED_STATE
        ledger = cls(
            items=items,
            function=str(record.get("function") or ""),
            fingerprint=str(record.get("fingerprint") or ""),
            try_number=try_number,
            states=states,
            chunks=int(record.get("chunks") or 0),
            recent={int(index): result for index, result in (record.get("recent") or {}).items()},
            started_at=float(record.get("started_at") or time.time()),
            done=None if new_try else record.get("done"),
        )
        ledger.tally = _recount(states, b.Tally.from_dict(record.get("tally") or {"items": items}))
        return ledger, unknown

    def count(self, outcome: str) -> int:
        assert self.tally is not None
        return self.tally.counts.get(outcome, 0)


def _recount(states: bytearray, earlier: b.Tally) -> b.Tally:
    """Counts from the item states (some changed on taking over), with the earlier runs' billing."""
    tally = b.Tally(len(states), billed_ms=earlier.billed_ms, mb_ms=earlier.mb_ms)
    for state in set(states):
        outcome = b.outcome_of_state(state)
        if outcome != b.NOT_STARTED:
            tally.counts[outcome] = tally.counts.get(outcome, 0) + states.count(state)
    return tally


def lease_is_live(record: Mapping[str, Any], now: float | None = None) -> bool:
    """Whether the run named by ``record`` may still be running the batch (a finished batch has no lease)."""
    if record.get("done") is not None:
        return False
    until = record.get("lease_until")
    now = time.time() if now is None else now
    return isinstance(until, int | float) and now <= until + LEASE_SLACK_S


async def take_over(store: BatchStore, ledger: Ledger) -> bool:
    """
    Try to make ``ledger``'s run the owner of the batch, found with no live lease: the splitter of the
    module docstring. On ``True`` the store holds ``ledger``'s record; on ``False`` another run got in at the
    same time, and this one must follow it.
    """
    await store.put(CONTENDER, {"nonce": ledger.owner, "at": time.time()})
    current = await store.get(LEDGER)
    if isinstance(current, dict) and current.get("owner") != ledger.owner and lease_is_live(current):
        return False
    await store.put(LEDGER, ledger.record())
    contender = await store.get(CONTENDER)
    return isinstance(contender, dict) and contender.get("nonce") == ledger.owner
