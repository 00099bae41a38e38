"""Records of asynchronous invocations: WAIT -> RUNNING -> SUCCESS | FAIL (or DISCARD when cancelled)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_provider_fgs.emulator.pool import Worker

MAX_RECORDS = 10_000


def iso_at(epoch: float) -> str:
    """UTC time ``epoch`` as ``2024-01-01T00:00:00.123Z`` (what the SDK's datetime fields parse)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class AsyncRecord:
    """
    One asynchronous invocation of ``function`` (name).

    ``error_code`` is an integer as in the official SDK's model (0 unless the invocation failed);
    ``submitted`` is the emulator clock's epoch time of acceptance, which query windows compare to;
    ``status_logged`` is whether the function had async status persistence on when it was accepted
    (status queries find only those records).
    """

    request_id: str
    function: str
    submitted: float = 0.0
    status: str = "WAIT"
    error_code: int = 0
    error_message: str = ""
    start_time: str = ""
    end_time: str = ""
    result: str = ""
    worker: Worker | None = field(default=None, repr=False)
    cancel_requested: bool = False
    status_logged: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "start_time": self.start_time,
            "end_time": self.end_time,
        }


class AsyncStore:
    """Thread-safe, bounded store of async records (oldest dropped first)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._records: OrderedDict[str, AsyncRecord] = OrderedDict()
        self._lock = threading.Lock()
        self.clock = clock

    def add(self, record: AsyncRecord) -> None:
        with self._lock:
            record.submitted = self.clock()
            record.start_time = iso_at(record.submitted)
            self._records[record.request_id] = record
            while len(self._records) > MAX_RECORDS:
                self._records.popitem(last=False)

    def get(self, request_id: str) -> AsyncRecord | None:
        with self._lock:
            return self._records.get(request_id)

    def of_function(self, function: str) -> list[AsyncRecord]:
        with self._lock:
            return [r for r in self._records.values() if r.function == function]

    def mark_running(self, record: AsyncRecord, worker: Worker) -> None:
        with self._lock:
            record.worker = worker
            record.status = "RUNNING"
            record.start_time = iso_at(self.clock())
            if record.cancel_requested:
                worker.cancel()

    def finish(
        self, record: AsyncRecord, *, ok: bool, error_code: int, error_message: str, result: str
    ) -> None:
        with self._lock:
            record.worker = None
            if record.cancel_requested:
                record.status = "DISCARD"
                record.error_code = error_code
                record.error_message = "cancelled"
            else:
                record.status = "SUCCESS" if ok else "FAIL"
                record.error_code = 0 if ok else error_code
                record.error_message = "" if ok else error_message
            record.result = result
            record.end_time = iso_at(self.clock())

    def running_of(self, function: str) -> list[AsyncRecord]:
        with self._lock:
            return [r for r in self._records.values() if r.function == function and r.status == "RUNNING"]

    def cancel(self, record: AsyncRecord) -> bool:
        """Ask a pending or running invocation to stop; ``False`` when it already finished."""
        with self._lock:
            if record.status not in ("WAIT", "RUNNING"):
                return False
            record.cancel_requested = True
            if record.worker is not None:
                record.worker.cancel()
            return True
