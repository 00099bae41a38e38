"""What goes into a batch and what comes out, as the engine sees them: payload sources, result sinks,
the options it runs with, and its report.

The engine knows them only by these protocols; :class:`ListSource` serves a list in memory, and the
trigger layer serves files at any location Airflow's object storage reads
(:mod:`~airflow_provider_fgs.triggers.batch_files`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_fgs.protocol import batch as b
from airflow_provider_fgs.protocol.errors import FunctionGraphError
from airflow_provider_fgs.protocol.result_check import ResultCheck

CHECKPOINT_S = 5.0
"""The longest time between two checkpoints of a running batch (claims write one too)."""
PROGRESS_S = 10.0
"""The longest time between two progress lines."""


class PayloadSource(Protocol):
    """The batch's input: how many items, what identifies it, and the items in order."""

    items: int
    fingerprint: str

    def payloads(self, wanted: Callable[[int], bool]) -> AsyncIterator[tuple[int, Any]]:
        """``(index, payload)`` of the items ``wanted`` says to invoke, in input order."""
        ...


class ResultSink(Protocol):
    """Where results go when they are not kept for ``return_value`` (``results_path``)."""

    async def begin(self, ended: Callable[[int], bool]) -> set[int]:
        """Start writing; carry over the lines an earlier run wrote for ``ended`` items (their indexes)."""
        ...

    async def write(self, lines: list[dict[str, Any]]) -> None:
        """Write ``lines`` so that they are kept even if this process dies next."""
        ...

    async def close(self) -> None: ...

    def where(self) -> str: ...


class ListSource:
    """
    Payloads held in memory (``payloads=`` of the operator).

    :param payloads: the payloads, in order.
    """

    def __init__(self, payloads: Sequence[Any]) -> None:
        self._payloads = payloads
        self.items = len(payloads)
        digest = hashlib.sha256()
        for payload in payloads:
            digest.update(json.dumps(payload, sort_keys=True, default=str).encode("utf-8"))
            digest.update(b"\n")
        self.fingerprint = f"list:{self.items}:{digest.hexdigest()[:32]}"

    async def payloads(self, wanted: Callable[[int], bool]) -> AsyncIterator[tuple[int, Any]]:
        for index, payload in enumerate(self._payloads):
            if wanted(index):
                yield index, payload


@dataclass(frozen=True)
class BatchOptions:
    """
    How a batch runs.

    :param max_concurrency: the most calls in flight.
    :param idempotent: the function may run twice for an item: items that may have run when a run
        stopped are invoked again instead of ending *outcome unknown*.
    :param policy: how many failed items the batch tolerates.
    :param result_check: a check of each successful result (a failed check makes the item a function
        error); only ``(json_path, expected)`` checks run outside a worker.
    :param failures_listed: how many failed items the ``failures`` XCom lists.
    :param checkpoint_s: the longest time between two checkpoints.
    :param progress_s: the longest time between two progress lines.
    """

    max_concurrency: int = 100
    idempotent: bool = False
    policy: b.FailurePolicy = field(default_factory=b.FailurePolicy)
    result_check: ResultCheck | None = None
    failures_listed: int = 100
    checkpoint_s: float = CHECKPOINT_S
    progress_s: float = PROGRESS_S


@dataclass
class BatchReport:
    """
    How a batch ended.

    :param status: ``success`` (within the policy), ``failed`` (too many failed items) or ``error`` (it
        stopped: rejected credentials, a function that does not exist, lost ownership).
    :param summary: the ``summary`` XCom.
    :param failures: the ``failures`` XCom.
    :param results: the results in input order (``None`` where an item did not succeed), or ``None``
        when a results sink took them.
    :param message: one line saying how it ended.
    :param error: the error that stopped it, for ``error``.
    :param recorded: another run of this try ended the batch (and pushed its XComs); this one only read
        how it ended.
    """

    status: str
    summary: dict[str, Any]
    failures: dict[str, Any]
    results: list[Any] | None
    message: str
    error: FunctionGraphError | None = None
    recorded: bool = False
