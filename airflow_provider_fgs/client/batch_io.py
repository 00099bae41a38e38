"""A batch's input and output seen by the engine: payload sources and result sinks.

The engine knows them only by these protocols; :class:`ListSource` serves a list in memory, and the
trigger layer serves files at any location Airflow's object storage reads
(:mod:`~airflow_provider_fgs.triggers.batch_files`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol


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
