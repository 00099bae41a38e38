"""A batch's payloads and results as JSON Lines files at any location Airflow's object storage reads.

``payloads_path`` is read twice: once to count its items and fingerprint it, then a block of lines at a
time as items are claimed, so a batch of 100,000 items holds only a block in memory. ``results_path`` is
written as answers arrive: each checkpoint writes the lines of the items it records before the ledger
says they ended. On local and network file systems the lines are on disk at once; object stores (S3,
OBS) keep an object only when it is closed, so a crash there loses the lines of the run that crashed
(the items stay recorded in the ledger, and their lines are written again without their results).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from typing import IO, Any

from airflow_provider_fgs.compat import to_thread
from airflow_provider_fgs.protocol.errors import InvalidRequestError

READ_BLOCK = 1000
"""Lines of ``payloads_path`` read per worker-thread hop."""


def _object_storage_path(path: Any) -> Any:
    from airflow.sdk import ObjectStoragePath

    return path if isinstance(path, ObjectStoragePath) else ObjectStoragePath(str(path))


class PathSource:
    """
    Payloads from a JSON Lines file: one JSON value per line (blank lines are not items).

    Build it with :meth:`open` (it reads the file once, off the event loop).
    """

    def __init__(self, path: Any, items: int, fingerprint: str) -> None:
        self.path = path
        self.items = items
        self.fingerprint = fingerprint

    @classmethod
    async def open(cls, location: Any) -> PathSource:
        """Count the items of the file at ``location`` and fingerprint its content."""
        path = _object_storage_path(location)
        items, digest = await to_thread(_count_and_hash, path)
        return cls(path, items, f"path:{items}:{digest}")

    async def payloads(self, wanted: Callable[[int], bool]) -> AsyncIterator[tuple[int, Any]]:
        handle = await to_thread(self.path.open, "rb")
        try:
            index = 0
            while True:
                lines = await to_thread(_read_lines, handle)
                if not lines:
                    return
                for line in lines:
                    if wanted(index):
                        yield index, line
                    index += 1
        finally:
            await to_thread(handle.close)


def _read_lines(handle: IO[bytes]) -> list[bytes]:
    lines: list[bytes] = []
    while len(lines) < READ_BLOCK:
        line = handle.readline()
        if not line:
            break
        if line.strip():
            lines.append(line.strip())
    return lines


def _count_and_hash(path: Any) -> tuple[int, str]:
    if not path.exists():
        raise InvalidRequestError(f"Invalid payloads_path {str(path)!r}: no such file")
    digest = hashlib.sha256()
    items = 0
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                items += 1
                digest.update(line.strip())
                digest.update(b"\n")
    return items, digest.hexdigest()[:32]


class ResultsFile:
    """
    Results written to a JSON Lines file, one line per item as it ends (``index``, ``outcome``,
    ``request_id``, and ``result`` or ``error``), in the order the items end.

    :param location: where to write, any location Airflow's object storage reads.
    """

    def __init__(self, location: Any) -> None:
        self.path = _object_storage_path(location)
        self._handle: IO[bytes] | None = None

    def where(self) -> str:
        return str(self.path)

    async def begin(self, ended: Callable[[int], bool]) -> set[int]:
        carried = await to_thread(self._read_earlier, ended)
        self._handle = await to_thread(self.path.open, "wb")
        await self.write(list(carried.values()))
        return set(carried)

    def _read_earlier(self, ended: Callable[[int], bool]) -> dict[int, dict[str, Any]]:
        """The lines an earlier run wrote for items the ledger says ended (the last one of each)."""
        if not self.path.exists():
            return {}
        carried: dict[int, dict[str, Any]] = {}
        with self.path.open("rb") as handle:
            for raw in handle:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue  # the last line of a run that crashed while writing it
                index = line.get("index") if isinstance(line, dict) else None
                if isinstance(index, int) and ended(index):
                    carried[index] = line
        return carried

    async def write(self, lines: list[dict[str, Any]]) -> None:
        if lines:
            data = b"".join(json.dumps(line, separators=(",", ":")).encode("utf-8") + b"\n" for line in lines)
            await to_thread(self._write, data)

    def _write(self, data: bytes) -> None:
        assert self._handle is not None
        self._handle.write(data)
        self._handle.flush()

    async def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            await to_thread(handle.close)
