"""A pool of worker processes: one invocation at a time per worker, grown on demand.

Workers are forked by the zygote (see :mod:`.zygote`), a small process with only the worker module
loaded, so a new worker costs a few milliseconds and little memory whatever the server process has
imported. Idle workers are reused (handler modules stay loaded, like a warm instance); a worker that
timed out, crashed or was cancelled is killed and never reused. :meth:`WorkerPool.run` is a
coroutine of the server's event loop: it waits on the worker's socket, so hundreds of concurrent
invocations need no thread each.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Literal

from airflow_provider_fgs.emulator.worker import Job, JobResult, read_log_mirror
from airflow_provider_fgs.emulator.zygote import MAX_BATCH

DEFAULT_MAX_WORKERS = 256
DEFAULT_IDLE_SECONDS = 120.0
# Workers forked at once when none is idle: a burst of invocations costs few fork-server round trips.
GROW_BATCH = 32
_INLINE_SEND_BYTES = 64 * 1024


class Worker:
    """One worker process (a child of the zygote) and the server's end of its socket."""

    def __init__(self, pid: int, conn: Connection, log_dir: str = "") -> None:
        self.pid = pid
        self.conn = conn
        self.log_mirror = os.path.join(log_dir, f"worker-{pid}.log") if log_dir else ""
        self.cancelled = False
        self.dead = False
        self.idle_since = time.monotonic()

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
        if self.log_mirror:
            with contextlib.suppress(OSError):
                os.unlink(self.log_mirror)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Zygote:
    """The fork server process; thread-safe, restarted if it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._reader: socket.SocketIO | None = None
        self.log_dir = ""

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

    def fork_workers(self, count: int) -> list[Worker]:
        """Fork ``count`` workers (at most :data:`MAX_BATCH`) in one round trip."""
        pairs = [socket.socketpair() for _ in range(min(count, MAX_BATCH))]
        try:
            with self._lock:
                for attempt in (1, 2):
                    control = self._control or self._start()
                    try:
                        socket.send_fds(control, [b"F"], [theirs.fileno() for _, theirs in pairs])
                        line = self._reader.readline() if self._reader else b""
                        if line.strip():
                            break
                    except OSError:
                        if attempt == 2:
                            raise
                    self._stop_locked()
                else:
                    raise RuntimeError("The emulator's worker fork server stopped")
        except BaseException:
            for ours, _ in pairs:
                ours.close()
            raise
        finally:
            for _, theirs in pairs:
                theirs.close()
        pids = [int(pid) for pid in line.split()]
        return [
            Worker(pid, Connection(ours.detach()), self.log_dir)
            for pid, (ours, _) in zip(pids, pairs, strict=True)
        ]

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
    """
    How one job ended: ``ok`` with a result, or ``timeout``/``crashed``/``cancelled`` without.

    :param log: without a result, the end of the log the job wrote before it was stopped.
    """

    status: Literal["ok", "timeout", "crashed", "cancelled"]
    result: JobResult | None = None
    log: str = ""


class WorkerPool:
    """
    Run jobs in worker processes.

    :param max_workers: most invocations running at once; more wait in line.
    :param idle_seconds: idle workers older than this are stopped (warm instances expire).
    """

    def __init__(
        self, max_workers: int = DEFAULT_MAX_WORKERS, idle_seconds: float = DEFAULT_IDLE_SECONDS
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self._idle_seconds = idle_seconds
        self._zygote = Zygote()
        self._zygote.log_dir = self._log_dir = tempfile.mkdtemp(prefix="fgs-emulator-logs-")
        self._idle: deque[Worker] = deque()
        self._busy: set[Worker] = set()
        self._lock = threading.Lock()
        self._grow_lock = threading.Lock()
        self._closed = False
        self._slots = asyncio.Semaphore(max_workers)
        # Forks and big writes only: waiting for results happens in the event loop.
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fgs-pool")

    def prestart(self, count: int) -> None:
        """Start ``count`` idle workers now (and the fork server)."""
        while count > 0:
            workers = self._zygote.fork_workers(count)
            count -= len(workers)
            with self._lock:
                self._idle.extend(workers)

    def _take_idle(self) -> Worker | None:
        with self._lock:
            if self._closed:
                raise RuntimeError("The worker pool is closed")
            while self._idle:
                worker = self._idle.pop()
                if worker.healthy():
                    self._busy.add(worker)
                    return worker
                worker.close()
        return None

    def _release(self, worker: Worker, reusable: bool) -> None:
        expired: list[Worker] = []
        with self._lock:
            self._busy.discard(worker)
            if reusable and not self._closed:
                worker.idle_since = now = time.monotonic()
                self._idle.append(worker)
                # The deque's left end holds the workers idle the longest.
                while self._idle and now - self._idle[0].idle_since > self._idle_seconds:
                    expired.append(self._idle.popleft())
            else:
                expired.append(worker)
        for old in expired:
            old.close()

    def _grow(self) -> Worker:
        with self._grow_lock:  # one thread grows the pool; the others then find idle workers
            worker = self._take_idle()
            if worker is not None:
                return worker
            with self._lock:
                room = self.max_workers - len(self._busy)
            worker, *spare = self._zygote.fork_workers(max(1, min(GROW_BATCH, room)))
            with self._lock:
                self._busy.add(worker)
                self._idle.extend(spare)
            return worker

    async def run(
        self, job: Job, timeout: float, on_start: Callable[[Worker], None] | None = None
    ) -> Outcome:
        """
        Run ``job`` in a worker and wait at most ``timeout`` seconds for it.

        The wait is a reader on the worker's socket in the event loop (no thread per invocation).
        At most ``max_workers`` jobs run at once; the others wait for a free slot first.

        :param on_start: called with the worker once the job is sent (lets a caller cancel it).
        """
        async with self._slots:
            worker = self._take_idle()
            if worker is None:
                worker = await asyncio.get_running_loop().run_in_executor(self.executor, self._grow)
            job = dataclasses.replace(job, log_mirror=worker.log_mirror)
            reusable = False
            try:
                outcome = await self._exchange(worker, job, timeout, on_start)
                reusable = outcome.status == "ok"
                if not reusable:
                    worker.kill()  # stopped before its log is read: nothing is written after
                    outcome = dataclasses.replace(outcome, log=read_log_mirror(worker.log_mirror))
                return outcome
            finally:
                self._release(worker, reusable)

    async def _exchange(
        self, worker: Worker, job: Job, timeout: float, on_start: Callable[[Worker], None] | None
    ) -> Outcome:
        """Send ``job`` to ``worker`` and wait for its result (the caller releases the worker)."""
        loop = asyncio.get_running_loop()
        try:
            if len(job.body) > _INLINE_SEND_BYTES:  # a big body is written off the event loop
                await loop.run_in_executor(self.executor, worker.conn.send, job)
            else:
                worker.conn.send(job)
        except (OSError, ValueError):
            return Outcome("crashed")
        if on_start is not None:
            on_start(worker)
        readable: asyncio.Future[None] = loop.create_future()
        fd = worker.conn.fileno()
        loop.add_reader(fd, _set_once, readable)
        try:
            await asyncio.wait_for(readable, timeout)
        except TimeoutError:
            return Outcome("cancelled" if worker.cancelled else "timeout")
        finally:
            loop.remove_reader(fd)
        try:
            result = worker.conn.recv()
        except (EOFError, OSError):
            return Outcome("cancelled" if worker.cancelled else "crashed")
        return Outcome("ok", result)

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
        shutil.rmtree(self._log_dir, ignore_errors=True)
