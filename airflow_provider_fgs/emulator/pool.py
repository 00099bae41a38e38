"""A pool of worker processes: one invocation at a time per worker, grown on demand.

Workers are forked by the zygote (see :mod:`.zygote`), a small process with only the worker module
loaded, so a new worker costs a few milliseconds and little memory whatever the server process has
imported. Idle workers are reused (handler modules stay loaded, like a warm instance); a worker that
timed out, crashed or was cancelled is killed and never reused. Callers block in
:meth:`WorkerPool.run`, which is meant to run in the pool's thread executor (one thread per
in-flight invocation, up to ``max_workers``; further invocations wait in line).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Literal

from airflow_provider_fgs.emulator.worker import Job, JobResult

DEFAULT_MAX_WORKERS = 256
DEFAULT_MAX_IDLE = 32


class Worker:
    """One worker process (a child of the zygote) and the server's end of its socket."""

    def __init__(self, pid: int, conn: Connection) -> None:
        self.pid = pid
        self.conn = conn
        self.cancelled = False
        self.dead = False

    def kill(self) -> None:
        """Kill the process (idempotent)."""
        if not self.dead:
            self.dead = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def cancel(self) -> None:
        """Stop the job this worker runs: it is killed and its job reports ``cancelled``."""
        self.cancelled = True
        self.kill()

    def healthy(self) -> bool:
        """An idle worker never has anything to read; readable means it exited (EOF)."""
        try:
            return not self.dead and not self.conn.poll(0)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        self.kill()
        self.conn.close()


class Zygote:
    """The fork server process; thread-safe, restarted if it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._reader: socket.SocketIO | None = None

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_fgs.emulator.zygote", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._control = ours
        self._reader = ours.makefile("rb")  # type: ignore[assignment]
        return ours

    def fork_worker(self) -> Worker:
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                for attempt in (1, 2):
                    control = self._control or self._start()
                    try:
                        socket.send_fds(control, [b"F"], [theirs.fileno()])
                        line = self._reader.readline() if self._reader else b""
                        if line.strip():
                            break
                    except OSError:
                        if attempt == 2:
                            raise
                    self._stop_locked()
                else:
                    raise RuntimeError("The emulator's worker fork server stopped")
        finally:
            theirs.close()
        return Worker(int(line), Connection(ours.detach()))

    def _stop_locked(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._control is not None:
            self._control.close()
        if self._process is not None:
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._control = self._reader = self._process = None

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()


@dataclass(frozen=True)
class Outcome:
    """How one job ended: ``ok`` with a result, or ``timeout``/``crashed``/``cancelled`` without."""

    status: Literal["ok", "timeout", "crashed", "cancelled"]
    result: JobResult | None = None


class WorkerPool:
    """
    Run jobs in worker processes.

    :param max_workers: most invocations running at once; more wait in line.
    :param max_idle: most idle workers kept for reuse.
    """

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS, max_idle: int = DEFAULT_MAX_IDLE) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self._max_idle = max_idle
        self._zygote = Zygote()
        self._idle: deque[Worker] = deque()
        self._busy: set[Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fgs-invoke")

    def prestart(self, count: int) -> None:
        """Start ``count`` idle workers now (and the fork server)."""
        workers = [self._zygote.fork_worker() for _ in range(count)]
        with self._lock:
            self._idle.extend(workers)

    def _acquire(self) -> Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("The worker pool is closed")
            while self._idle:
                worker = self._idle.pop()
                if worker.healthy():
                    self._busy.add(worker)
                    return worker
                worker.close()
        worker = self._zygote.fork_worker()
        with self._lock:
            self._busy.add(worker)
        return worker

    def _release(self, worker: Worker, reusable: bool) -> None:
        with self._lock:
            self._busy.discard(worker)
            if reusable and not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(worker)
                return
        worker.close()

    def run(self, job: Job, timeout: float, on_start: Callable[[Worker], None] | None = None) -> Outcome:
        """
        Run ``job`` in a worker and wait at most ``timeout`` seconds for it (blocking).

        :param on_start: called with the worker once the job is sent (lets a caller cancel it).
        """
        worker = self._acquire()
        reusable = False
        try:
            try:
                worker.conn.send(job)
            except (OSError, ValueError):
                return Outcome("crashed")
            if on_start is not None:
                on_start(worker)
            if not worker.conn.poll(timeout):
                return Outcome("cancelled" if worker.cancelled else "timeout")
            try:
                result = worker.conn.recv()
            except (EOFError, OSError):
                return Outcome("cancelled" if worker.cancelled else "crashed")
            reusable = True
            return Outcome("ok", result)
        finally:
            self._release(worker, reusable)

    def live_workers(self) -> int:
        """Worker processes alive now (idle or busy)."""
        with self._lock:
            return sum(1 for worker in [*self._idle, *self._busy] if not worker.dead)

    def close(self) -> None:
        """Kill every worker, stop the fork server and the executor."""
        with self._lock:
            self._closed = True
            workers = [*self._idle, *self._busy]
            self._idle.clear()
        for worker in workers:
            worker.close()
        self._zygote.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
