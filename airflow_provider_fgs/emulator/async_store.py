"""Records of asynchronous invocations: WAIT -> RUNNING -> SUCCESS | FAIL (or DISCARD when cancelled)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_fgs.emulator.context import iso_now
from airflow_provider_fgs.emulator.pool import Worker

MAX_RECORDS = 10_000


@dataclass
class AsyncRecord:
    """One asynchronous invocation of ``function`` (name)."""

    request_id: str
    function: str
    status: str = "WAIT"
    error_code: str = ""
    error_message: str = ""
    start_time: str = ""
    end_time: str = ""
    result: str = ""
    worker: Worker | None = field(default=None, repr=False)
    cancel_requested: bool = False

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

    def __init__(self) -> None:
        self._records: OrderedDict[str, AsyncRecord] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, record: AsyncRecord) -> None:
        with self._lock:
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
            record.start_time = iso_now()
            if record.cancel_requested:
                worker.cancel()

    def finish(
        self, record: AsyncRecord, *, ok: bool, error_code: str, error_message: str, result: str
    ) -> None:
        with self._lock:
            record.worker = None
            if record.cancel_requested:
                record.status = "DISCARD"
                record.error_message = "cancelled"
            else:
                record.status = "SUCCESS" if ok else "FAIL"
                record.error_code = "" if ok else error_code
                record.error_message = "" if ok else error_message
            record.result = result
            record.end_time = iso_now()

    def cancel(self, record: AsyncRecord) -> bool:
        """Ask a pending or running invocation to stop; ``False`` when it already finished."""
        with self._lock:
            if record.status not in ("WAIT", "RUNNING"):
                return False
            record.cancel_requested = True
            if record.worker is not None:
                record.worker.cancel()
            return True
