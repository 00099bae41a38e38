"""Code that runs inside a worker process: load a handler module, call it, report the outcome.

Kept free of the web stack: the forkserver preloads this module, so every worker forks from a
small parent. A worker keeps loaded handler modules between invocations (warm instances), and
reloads a handler file as soon as its size or modification time changes, so edits between runs apply.
"""

from __future__ import annotations

import io
import json
import mmap
import os
import resource
import signal
import sys
import time
import traceback
import types
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from airflow_provider_fgs.emulator.context import RuntimeContext, RuntimeLogger, iso_now


@dataclass(frozen=True)
class Job:
    """
    One invocation sent to a worker.

    :param log_mirror: a file of the pool where the worker mirrors the end of the job's log as it is
        written, so the log survives when the worker is killed (timeout) or dies (crash).
    """

    request_id: str
    path: str
    handler: str
    body: bytes
    function_name: str
    package: str
    version: str
    alias: str
    memory_size: int
    timeout: float
    project_id: str
    user_data: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    log_mirror: str = ""


@dataclass(frozen=True)
class JobResult:
    """
    What a worker reports back.

    :param result: the serialized return value, or the JSON error payload when ``failed``.
    :param failed: the handler raised (or its return value could not be serialized).
    :param log: the user part of the log (logger lines and printed output).
    :param duration_ms: handler run time.
    :param memory_used_mb: peak resident memory of the worker.
    """

    result: str
    failed: bool
    log: str
    duration_ms: float
    memory_used_mb: float


_modules: dict[str, tuple[int, int, types.ModuleType]] = {}

MIRROR_BYTES = 4096
"""The end of a job's log kept in the mirror: more than the platform's 2000-byte tail."""
_HEADER = 8


class LogMirror:
    """
    The last :data:`MIRROR_BYTES` bytes of a job's log in a memory-mapped file: a ring after an 8-byte
    count of the bytes written. Writes are memory copies (no system call), and what was written stays
    in the file when the process is killed.
    """

    def __init__(self, path: str) -> None:
        with open(path, "a+b") as file:
            file.truncate(_HEADER + MIRROR_BYTES)
            self._map = mmap.mmap(file.fileno(), _HEADER + MIRROR_BYTES)
        self._written = 0
        self.reset()

    def reset(self) -> None:
        self._written = 0
        self._map[:_HEADER] = (0).to_bytes(_HEADER, "little")

    def write(self, text: str) -> None:
        encoded = text.encode("utf-8", errors="replace")
        self._written += len(encoded)
        data = encoded[-MIRROR_BYTES:]
        start = (self._written - len(data)) % MIRROR_BYTES
        first = min(len(data), MIRROR_BYTES - start)
        self._map[_HEADER + start : _HEADER + start + first] = data[:first]
        if first < len(data):
            self._map[_HEADER : _HEADER + len(data) - first] = data[first:]
        self._map[:_HEADER] = self._written.to_bytes(_HEADER, "little")


def read_log_mirror(path: str) -> str:
    """The end of the log a worker mirrored into ``path`` (cut at a character), ``""`` when none."""
    try:
        with open(path, "rb") as file:
            raw = file.read(_HEADER + MIRROR_BYTES)
    except OSError:
        return ""
    if len(raw) < _HEADER + MIRROR_BYTES:
        return ""
    written = int.from_bytes(raw[:_HEADER], "little")
    ring = raw[_HEADER:]
    if written <= MIRROR_BYTES:
        data = ring[:written]
    else:
        start = written % MIRROR_BYTES
        data = ring[start:] + ring[:start]
        while data and data[0] & 0xC0 == 0x80:  # the ring starts inside a character
            data = data[1:]
    return data.decode("utf-8", errors="replace")


_mirrors: dict[str, LogMirror] = {}


def _mirror(path: str) -> LogMirror | None:
    if not path:
        return None
    mirror = _mirrors.get(path)
    if mirror is None:
        mirror = _mirrors[path] = LogMirror(path)
    mirror.reset()
    return mirror


class _MirroredLog(io.StringIO):
    """The job's log buffer; every write also goes to the mirror."""

    def __init__(self, mirror: LogMirror | None) -> None:
        super().__init__()
        self._mirror = mirror

    def write(self, text: str) -> int:
        written = super().write(text)
        if self._mirror is not None:
            self._mirror.write(text)
        return written


def load_handler_module(path: str) -> types.ModuleType:
    """Import ``path`` as a module, again whenever the file changed since the last import."""
    stat = os.stat(path)
    cached = _modules.get(path)
    if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
        return cached[2]
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.append(directory)  # lets a handler import helper modules beside it
    name = "_fgs_handler_" + os.path.splitext(os.path.basename(path))[0]
    module = types.ModuleType(name)
    module.__file__ = path
    with open(path, "rb") as source:
        code = compile(source.read(), path, "exec")  # no .pyc: a stale cache must never win over an edit
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    _modules[path] = (stat.st_mtime_ns, stat.st_size, module)
    return module


def error_payload(exc: BaseException) -> str:
    """The runtime's failure payload ``{"errorMessage", "errorType", "stackTrace"}`` as JSON."""
    # The platform shows the function's frames only: the emulator's own (run_job here) are left out.
    frames = traceback.format_list(
        [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename != __file__]
    )
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": [line.rstrip("\n") for line in frames],
        },
        ensure_ascii=False,
    )


def serialize_result(value: Any) -> str:
    """``None`` is empty, a ``str`` passes through, anything else is JSON-encoded."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return json.dumps(value, ensure_ascii=False)


def memory_used_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_job(job: Job) -> JobResult:
    """Run one invocation in this process."""
    log = _MirroredLog(_mirror(job.log_mirror))
    logger = RuntimeLogger(job.request_id, log.write)
    context = RuntimeContext(
        request_id=job.request_id,
        function_name=job.function_name,
        package=job.package,
        version=job.version,
        alias=job.alias,
        memory_size=job.memory_size,
        timeout=job.timeout,
        deadline=time.monotonic() + job.timeout,
        user_data=job.user_data,
        project_id=job.project_id,
        logger=logger,
    )
    saved_env = {key: os.environ.get(key) for key in job.environment}
    os.environ.update(job.environment)
    saved_streams = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = log
    started = time.perf_counter()
    failed = False
    try:
        module = load_handler_module(job.path)
        handler = getattr(module, job.handler, None)
        if not callable(handler):
            raise AttributeError(f"Handler {job.handler!r} not found in {os.path.basename(job.path)}")
        event = json.loads(job.body) if job.body.strip() else {}
        result = serialize_result(handler(event, context))
    except Exception as exc:
        failed = True
        result = error_payload(exc)
    except SystemExit as exc:
        failed = True
        result = error_payload(RuntimeError(f"The function called exit({exc.code})"))
    finally:
        duration_ms = (time.perf_counter() - started) * 1000.0
        sys.stdout, sys.stderr = saved_streams
        for key, old in saved_env.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
    return JobResult(
        result=result,
        failed=failed,
        log=log.getvalue(),
        duration_ms=duration_ms,
        memory_used_mb=memory_used_mb(),
    )


def worker_main(conn: Connection) -> None:
    """Serve jobs from ``conn`` until the parent closes it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server; it stops us itself
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(run_job(job))


__all__ = ["Job", "JobResult", "iso_now", "run_job", "worker_main"]
