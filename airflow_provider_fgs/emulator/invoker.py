"""Run one invocation of a resolved function in the worker pool and describe its outcome."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_fgs.emulator.context import iso_now
from airflow_provider_fgs.emulator.pool import Outcome, Worker, WorkerPool
from airflow_provider_fgs.emulator.registry import ResolvedFunction
from airflow_provider_fgs.emulator.stats import Stats
from airflow_provider_fgs.emulator.worker import Job
from airflow_provider_fgs.protocol.invoke import MAX_PAYLOAD_BYTES

# X-Func-Err-Code values of the emulator's runtime ("0" is success).
ERR_HANDLER = "1"
ERR_TIMEOUT = "2"
ERR_CRASH = "3"
ERR_RESPONSE_TOO_LARGE = "4"
ERR_CANCELLED = "5"


@dataclass(frozen=True)
class Invocation:
    """
    A finished invocation.

    :param result: the serialized return value, or the JSON error payload when ``failed``.
    :param failed: the function failed (exception, timeout, crash, oversized result).
    :param error_code: ``X-Func-Err-Code``: ``"0"`` on success.
    :param log: the full log, with the platform's Start/Finish frame.
    :param duration_ms: run time.
    :param billing_duration_ms: billed time (whole milliseconds, at least 1).
    :param memory_size: memory in MB the invocation ran with.
    :param memory_used_mb: peak memory of the worker.
    """

    result: str
    failed: bool
    error_code: str
    log: str
    duration_ms: float
    billing_duration_ms: int
    memory_size: int
    memory_used_mb: float

    @property
    def error_message(self) -> str:
        """The function's error message, for async status records."""
        try:
            payload = json.loads(self.result)
        except ValueError:
            return self.result[:500]
        if isinstance(payload, dict):
            return str(payload.get("errorMessage", ""))
        return self.result[:500]


def _failure(kind: str, message: str) -> str:
    return json.dumps({"errorMessage": message, "errorType": kind, "stackTrace": []})


class Invoker:
    """
    Turns a resolved function and an event into an :class:`Invocation`.

    :param pool: the worker pool.
    :param stats: counters; an invocation is counted once a worker has the job.
    :param project_id: reported by ``context.getProjectID()``.
    """

    def __init__(self, pool: WorkerPool, stats: Stats, project_id: str) -> None:
        self._pool = pool
        self._stats = stats
        self._project_id = project_id

    async def invoke(
        self,
        function: ResolvedFunction,
        body: bytes,
        request_id: str,
        *,
        memory_size: int | None = None,
        on_start: Callable[[Worker], None] | None = None,
    ) -> Invocation:
        spec = function.spec
        memory = memory_size or spec.memory_size
        job = Job(
            request_id=request_id,
            path=spec.path,
            handler=spec.handler,
            body=body,
            function_name=spec.name,
            package=spec.package,
            version=function.version,
            alias=function.alias,
            memory_size=memory,
            timeout=spec.timeout,
            project_id=self._project_id,
            user_data=spec.user_data,
            environment=spec.environment,
        )

        def started(worker: Worker) -> None:
            self._stats.count_invocation(spec.name)
            if on_start is not None:
                on_start(worker)

        start_line = f"{iso_now()} Start invoke request '{request_id}', version: {function.version}\n"
        loop = asyncio.get_running_loop()
        began = loop.time()
        outcome: Outcome = await self._pool.run(job, spec.timeout, started)
        wall_ms = (loop.time() - began) * 1000.0
        if outcome.result is not None:
            res = outcome.result
            result, failed, user_log = res.result, res.failed, res.log
            duration, memory_used = res.duration_ms, res.memory_used_mb
            error_code = ERR_HANDLER if failed else "0"
            if not failed and len(result.encode("utf-8")) > MAX_PAYLOAD_BYTES:
                result = _failure(
                    "ResponseSizeTooLarge", f"The function returned more than {MAX_PAYLOAD_BYTES} bytes"
                )
                failed, error_code = True, ERR_RESPONSE_TOO_LARGE
        else:
            duration, memory_used, user_log, failed = wall_ms, 0.0, "", True
            if outcome.status == "timeout":
                error_code = ERR_TIMEOUT
                message = f"Invoke function timeout: the function ran longer than {spec.timeout:g} s"
                result = _failure("FunctionTimeoutError", message)
            elif outcome.status == "cancelled":
                error_code = ERR_CANCELLED
                message = "The invocation was cancelled"
                result = _failure("InvocationCancelled", message)
            else:
                error_code = ERR_CRASH
                message = "The runtime process exited while running the function"
                result = _failure("RuntimeExitError", message)
            # The function's own lines written before it was stopped, then the platform's line.
            user_log = outcome.log + ("" if outcome.log.endswith("\n") or not outcome.log else "\n")
            user_log += f"{iso_now()} {request_id} ERROR {message}\n"
        billing = max(1, math.ceil(duration))
        finish_line = (
            f"{iso_now()} Finish invoke request '{request_id}', duration: {duration:.3f}ms, "
            f"billing duration: {billing}ms, memory used: {memory_used:.3f}MB, billing memory: {memory}MB\n"
        )
        return Invocation(
            result=result,
            failed=failed,
            error_code=error_code,
            log=start_line + user_log + finish_line,
            duration_ms=duration,
            billing_duration_ms=billing,
            memory_size=memory,
            memory_used_mb=memory_used,
        )
