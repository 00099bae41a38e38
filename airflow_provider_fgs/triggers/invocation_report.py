"""How a finished synchronous invocation is reported, from a worker or a triggerer: log lines, XComs."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_fgs.protocol.invoke import LOG_TAIL_BYTES, InvocationResult

XCOM_REQUEST_ID = "request_id"
XCOM_LOG = "log"
XCOM_SUMMARY = "summary"
XCOM_BILLING_DURATION_MS = "billing_duration_ms"
XCOM_ERROR_CODE = "error_code"
XCOM_ERROR_TYPE = "error_type"
"""The class of the provider's error that failed the task (``FunctionError``, ``ThrottledError``...)."""


def invocation_xcoms_keys() -> tuple[str, ...]:
    """The keys of :func:`invocation_xcoms`."""
    return (XCOM_REQUEST_ID, XCOM_LOG, XCOM_SUMMARY, XCOM_BILLING_DURATION_MS, XCOM_ERROR_CODE)


def invocation_xcoms(result: InvocationResult) -> dict[str, Any]:
    """
    The XComs describing an invocation (besides ``return_value``), pushed even on a function error;
    ``error_code`` (``X-Func-Err-Code``) only on a function error.
    """
    xcoms = {
        XCOM_REQUEST_ID: result.request_id,
        XCOM_LOG: result.log,
        XCOM_SUMMARY: result.summary,
        XCOM_BILLING_DURATION_MS: result.billing_duration_ms,
    }
    if result.is_function_error:
        xcoms[XCOM_ERROR_CODE] = result.function_error_code or "unknown"
    return xcoms


def log_invocation(
    log: Any, *, function: str, result: InvocationResult, log_type: str | None, then: str = ""
) -> None:
    """
    Write the function's log tail, its stack trace on a function error, and one summary line.

    The log tail and the stack trace are one record each (their lines prefixed ``| ``): in the triggerer
    every record is a message to its supervisor, which handles one per loop.

    :param log: the task's (or the trigger's) logger.
    :param function: the function's URN or label, named in the summary.
    :param result: the finished invocation.
    :param log_type: the ``log_type`` the call was made with (``"tail"`` says when no log came back).
    :param then: what happens next, appended to the summary line.
    """
    request_id = result.request_id or "unknown"
    if result.log_undecodable:
        log.warning(
            "The function log of request %s could not be decoded (the X-Cff-Function-Log header is "
            "not valid base64); it is not shown here",
            request_id,
        )
    elif result.log:
        size = result.log_bytes if result.log_bytes is not None else len(result.log.encode("utf-8"))
        if result.log_truncated:
            header = (
                f"Function log of request {request_id}, truncated: showing the last {size} bytes (the "
                f"platform returns at most {LOG_TAIL_BYTES}):"
            )
        else:
            header = f"Function log of request {request_id} ({size} bytes, complete):"
        log.info("%s", _block(header, result.log.splitlines()))
    elif log_type == "tail":
        log.info("No function log was returned for request %s", request_id)
    if result.is_function_error:
        trace = _stack_trace(result.result)
        if trace:
            log.info("%s", _block(f"Function stack trace of request {request_id}:", trace))
    outcome = "failed" if result.is_function_error else "succeeded"
    log.info("Invocation of %s %s: %s%s", function, outcome, _describe(result), then)


def _block(header: str, lines: list[str]) -> str:
    return "\n".join([header, *(f"| {line}" for line in lines)])


def _stack_trace(payload: Any) -> list[str]:
    """The lines of the ``stackTrace`` of a function's error payload (a list of lines or one string)."""
    if isinstance(payload, str):  # deserialize_result=False keeps the error payload as text
        try:
            payload = json.loads(payload)
        except ValueError:
            return []
    trace = payload.get("stackTrace") if isinstance(payload, dict) else None
    if isinstance(trace, str):
        return trace.splitlines()
    if isinstance(trace, list):
        return [line for item in trace for line in str(item).splitlines()]
    return []


def _describe(result: InvocationResult) -> str:
    """Request id, duration, billing and memory of an invocation, as far as they were reported."""
    parts = [f"request id {result.request_id or 'unknown'}"]
    if result.duration_ms is not None:
        parts.append(f"duration {result.duration_ms:g} ms")
    if result.billing_duration_ms is not None:
        parts.append(f"billed duration {result.billing_duration_ms} ms")
    used, size = result.summary.get("memoryUsed"), result.summary.get("memorySize")
    if isinstance(used, int | float) and isinstance(size, int | float):
        parts.append(f"memory used {used:g} of {size:g} MB")
    elif isinstance(size, int | float):
        parts.append(f"memory {size:g} MB")
    if result.function_error_code not in (None, "", "0"):
        parts.append(f"function error code {result.function_error_code}")
    return ", ".join(parts)
