"""A batch of invocations of one function: item outcomes, the ledger's item states, the summary and the
failure policy. Pure and I/O-free: the engine (:mod:`~airflow_provider_fgs.client.batch`), the trigger,
the operator and the FunctionGraph view read and write the same records.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_fgs.protocol.errors import InvalidRequestError

SUCCESS = "success"
FUNCTION_ERROR = "function_error"
PLATFORM_ERROR = "platform_error"
OUTCOME_UNKNOWN = "outcome_unknown"
NOT_STARTED = "not_started"
OUTCOMES = (SUCCESS, FUNCTION_ERROR, PLATFORM_ERROR, OUTCOME_UNKNOWN, NOT_STARTED)
FAILED_OUTCOMES = (FUNCTION_ERROR, PLATFORM_ERROR, OUTCOME_UNKNOWN)

# One byte per item in the ledger. An item is invoked only while the last ledger written says CLAIMED,
# so after a crash every CLAIMED item may have run.
NOT_STARTED_STATE = ord(".")
CLAIMED_STATE = ord("?")
_ENDED_STATES = {
    ord("s"): SUCCESS,
    ord("f"): FUNCTION_ERROR,
    ord("p"): PLATFORM_ERROR,  # refused before it ran (a 4xx, no connection, throttled): may be re-sent
    ord("m"): PLATFORM_ERROR,  # a platform error after which it may have run (5xx, broken connection)
    ord("u"): OUTCOME_UNKNOWN,
}
STATE_OF = {SUCCESS: ord("s"), FUNCTION_ERROR: ord("f"), OUTCOME_UNKNOWN: ord("u")}
NOT_RUN_PLATFORM_ERROR = ord("p")
MAY_HAVE_RUN_PLATFORM_ERROR = ord("m")


def outcome_of_state(state: int) -> str:
    """The outcome an item's ledger state stands for (a claimed item counts as not started)."""
    return _ENDED_STATES.get(state, NOT_STARTED)


def may_have_run(state: int) -> bool:
    """Whether the item of ``state`` may have run (so it is invoked again only for an idempotent function)."""
    return state not in (NOT_STARTED_STATE, NOT_RUN_PLATFORM_ERROR)


def encode_states(states: bytes | bytearray) -> str:
    """The item states, compressed for the ledger (long runs of one state compress to almost nothing)."""
    return base64.b64encode(zlib.compress(bytes(states), 6)).decode("ascii")


def decode_states(text: str, items: int) -> bytearray:
    """The item states of :func:`encode_states`; a malformed or mis-sized record raises ``ValueError``."""
    states = bytearray(zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True)))
    if len(states) != items:
        raise ValueError(f"the ledger holds {len(states)} item states for a batch of {items} items")
    return states


@dataclass(frozen=True)
class ItemOutcome:
    """
    How one item of a batch ended.

    :param index: the item's position in the input.
    :param outcome: one of :data:`OUTCOMES`.
    :param request_id: the platform's request id, when one came back.
    :param result: the function's (decoded) result, on success.
    :param error_code: the function's or the platform's error code, on failure.
    :param message: what went wrong, on failure.
    :param billed_ms: the billed duration.
    :param memory_mb: the memory the invocation was billed for.
    :param state: its ledger state (distinguishes a platform error that may have run from one that did not).
    """

    index: int
    outcome: str
    request_id: str | None = None
    result: Any = None
    error_code: str | None = None
    message: str | None = None
    billed_ms: int | None = None
    memory_mb: float | None = None
    state: int = 0

    def line(self) -> dict[str, Any]:
        """The item's record for ``results_path`` (JSON Lines) and the ``failures`` XCom."""
        record: dict[str, Any] = {"index": self.index, "outcome": self.outcome, "request_id": self.request_id}
        if self.outcome == SUCCESS:
            record["result"] = self.result
        else:
            record["error"] = {"code": self.error_code, "message": self.message}
        return record


@dataclass
class Tally:
    """
    Counts of a batch by outcome, with its billing; updated as items end, kept in the ledger.

    :param items: the batch's size.
    """

    items: int
    counts: dict[str, int] = field(default_factory=dict)
    billed_ms: int = 0
    mb_ms: float = 0.0

    def add(self, outcome: ItemOutcome) -> None:
        self.counts[outcome.outcome] = self.counts.get(outcome.outcome, 0) + 1
        if outcome.billed_ms is not None:
            self.billed_ms += outcome.billed_ms
            if outcome.memory_mb is not None:
                self.mb_ms += outcome.billed_ms * outcome.memory_mb

    @property
    def ended(self) -> int:
        return sum(self.counts.get(outcome, 0) for outcome in OUTCOMES if outcome != NOT_STARTED)

    @property
    def failed(self) -> int:
        return sum(self.counts.get(outcome, 0) for outcome in FAILED_OUTCOMES)

    def summary(self, *, wall_seconds: float, invoked: int) -> dict[str, Any]:
        """The ``summary`` XCom: counts by outcome (every outcome named), wall time, billing."""
        counts = {outcome: self.counts.get(outcome, 0) for outcome in OUTCOMES if outcome != NOT_STARTED}
        counts[NOT_STARTED] = self.items - sum(counts.values())
        return {
            "items": self.items,
            **counts,
            "invoked": invoked,
            "wall_seconds": round(wall_seconds, 3),
            "billed_duration_ms": self.billed_ms,
            "gb_seconds": round(self.mb_ms / 1024 / 1000, 6),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "counts": dict(self.counts),
            "billed_ms": self.billed_ms,
            "mb_ms": self.mb_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tally:
        counts = data.get("counts") or {}
        return cls(
            items=int(data["items"]),
            counts={str(k): int(v) for k, v in counts.items() if k in OUTCOMES},
            billed_ms=int(data.get("billed_ms") or 0),
            mb_ms=float(data.get("mb_ms") or 0.0),
        )


@dataclass(frozen=True)
class FailurePolicy:
    """
    When a batch fails its task, as Step Functions' tolerated failure count and percentage: by default any
    failed item does (function error, platform error, or an outcome unknown after a crash).

    :param max_failed_items: the most failed items the task tolerates.
    :param max_failed_ratio: the largest share of failed items (0 to 1) the task tolerates.
    """

    max_failed_items: int | None = None
    max_failed_ratio: float | None = None

    def __post_init__(self) -> None:
        items, ratio = self.max_failed_items, self.max_failed_ratio
        if items is not None and (isinstance(items, bool) or not isinstance(items, int) or items < 0):
            raise InvalidRequestError(f"Invalid max_failed_items {items!r}: expected an integer >= 0")
        if ratio is not None and (
            isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1
        ):
            raise InvalidRequestError(f"Invalid max_failed_ratio {ratio!r}: expected a number from 0 to 1")

    def tolerated(self, items: int) -> int:
        """The most failed items a batch of ``items`` tolerates."""
        bounds = [self.max_failed_items] if self.max_failed_items is not None else []
        if self.max_failed_ratio is not None:
            bounds.append(int(self.max_failed_ratio * items + 1e-9))
        return min(bounds) if bounds else 0

    def exceeded_by(self, failed: int, items: int) -> bool:
        """Whether ``failed`` items of ``items`` are more than the policy tolerates."""
        return failed > self.tolerated(items)

    def describe(self, items: int) -> str:
        tolerated = self.tolerated(items)
        return "no failed item" if tolerated == 0 else f"at most {tolerated} failed item(s)"


def bounded_failures(outcomes: Iterable[ItemOutcome], limit: int, total: int) -> dict[str, Any]:
    """The ``failures`` XCom: the first ``limit`` failed items' records and how many more failed."""
    listed = [outcome.line() for _, outcome in zip(range(limit), outcomes, strict=False)]
    return {"items": listed, "more": max(0, total - len(listed))}
