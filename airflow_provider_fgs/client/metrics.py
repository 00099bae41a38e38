"""
The provider's metrics, sent through Airflow's own metrics client (``[metrics]``: StatsD, Datadog or
OpenTelemetry), from the worker and the triggerer alike. ``docs/operating.md`` lists them.

One function per event, called where the event happens. Each name says what happened, so plain StatsD
(which drops tags) still tells the outcomes apart; the tags (``function``, ``error_code``, ...) reach
backends that take them. Emitting never raises: a metric must not fail a task.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import ParamSpec

from airflow_provider_fgs.compat import Stats
from airflow_provider_fgs.protocol.async_invoke import AsyncInvocationStatus
from airflow_provider_fgs.protocol.errors import (
    CredentialCoolDownError,
    FunctionGraphApiError,
    ThrottledError,
)
from airflow_provider_fgs.protocol.invoke import InvocationResult
from airflow_provider_fgs.protocol.urn import FunctionUrn

PREFIX = "functiongraph"
SUCCESS = "success"
FUNCTION_ERROR = "function_error"
PLATFORM_ERROR = "platform_error"
OUTCOME_UNKNOWN = "outcome_unknown"
ASYNC = "async_"  # what an asynchronous invocation's metric names add to a synchronous one's
ASYNC_STARTED = "started"
ASYNC_ENDED = {"SUCCESS": "success", "FAIL": "fail", "DISCARD": "discard"}  # by the record's status
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")
_log = logging.getLogger(__name__)
_P = ParamSpec("_P")

METRICS: dict[str, str] = {
    f"{PREFIX}.invocation.{SUCCESS}": "counter",
    f"{PREFIX}.invocation.{FUNCTION_ERROR}": "counter",
    f"{PREFIX}.invocation.{PLATFORM_ERROR}": "counter",
    f"{PREFIX}.invocation.{OUTCOME_UNKNOWN}": "counter",
    f"{PREFIX}.async_invocation.{ASYNC_STARTED}": "counter",
    f"{PREFIX}.async_invocation.{PLATFORM_ERROR}": "counter",
    **{f"{PREFIX}.async_invocation.{outcome}": "counter" for outcome in ASYNC_ENDED.values()},
    f"{PREFIX}.function.<function>.<outcome>": "counter",
    f"{PREFIX}.invocation.latency": "timer",
    f"{PREFIX}.invocation.billed_duration": "timer",
    f"{PREFIX}.invocation.billed_mb_ms": "counter",
    f"{PREFIX}.throttled": "counter",
    f"{PREFIX}.retries": "counter",
    f"{PREFIX}.iam.token_fetch.success": "counter",
    f"{PREFIX}.iam.token_fetch.failure": "counter",
    f"{PREFIX}.cooldown.started": "counter",
    f"{PREFIX}.cooldown.refused": "counter",
}
"""Every metric this module emits and its type (``<function>`` and ``<outcome>`` stand for values)."""


def _never_raises(emit: Callable[_P, None]) -> Callable[_P, None]:
    """Emit, and log instead of raising when something goes wrong (a metric never fails a task)."""

    @functools.wraps(emit)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            emit(*args, **kwargs)
        except Exception:
            _log.debug("Could not emit the metric of %s", emit.__name__, exc_info=True)

    return guarded


def function_tag(function: str | None) -> str:
    """
    The function's name for a tag or a metric name: the name, never the whole URN (which holds the
    project and the version, and would multiply the series).

    :param function: a function name or a function URN; ``None`` for a call that is not an invocation
        (IAM, a function's config): ``none``.
    """
    if not function:
        return "none"
    name = function
    if function.startswith("urn:"):
        try:
            name = FunctionUrn.parse(function).name
        except ValueError:
            return "unknown"
    return _UNSAFE_IN_NAME.sub("_", name)


def error_code_of(error: BaseException) -> str:
    """
    A short, bounded code for a failed call: the platform's error code (``FSS.1051``), else the HTTP
    status (``http_502``), else the kind of failure (``TransportError``, ``CredentialCoolDownError``).
    """
    if isinstance(error, CredentialCoolDownError):
        return type(error).__name__  # no request was sent: no platform code
    if isinstance(error, FunctionGraphApiError):
        if error.error_code:
            return error.error_code
        if error.http_status is not None:
            return f"http_{error.http_status}"
    return type(error).__name__


def _count_invocation(outcome: str, function: str, tags: dict[str, str], kind: str = "") -> None:
    """Count an outcome of a synchronous invocation, or with ``kind="async_"`` of an asynchronous one."""
    Stats.incr(f"{PREFIX}.{kind}invocation.{outcome}", tags=tags)
    # The same count under a name of its own per function, for StatsD without tags.
    Stats.incr(f"{PREFIX}.function.{function}.{kind}{outcome}")


def _time_invocation(outcome: str, function: str, seconds: float) -> None:
    Stats.timing(
        f"{PREFIX}.invocation.latency", seconds * 1000.0, tags={"function": function, "outcome": outcome}
    )


@_never_raises
def invocation_answered(function: str, seconds: float, result: InvocationResult) -> None:
    """
    A synchronous invocation came back from the function: it succeeded or the function failed.

    Counts ``functiongraph.invocation.success`` or ``functiongraph.invocation.function_error``; times the
    call (``functiongraph.invocation.latency``, retries included) and the billed duration; adds the
    billed memory times duration (``functiongraph.invocation.billed_mb_ms``).

    :param function: the function's name (or URN).
    :param seconds: how long the call took as the client saw it, retries and token fetch included.
    :param result: the answer.
    """
    name = function_tag(function)
    outcome = FUNCTION_ERROR if result.is_function_error else SUCCESS
    tags = {"function": name}
    if result.is_function_error:
        tags["error_code"] = result.function_error_code or "unknown"
    _count_invocation(outcome, name, tags)
    _time_invocation(outcome, name, seconds)
    billed_ms = result.billing_duration_ms
    if billed_ms is None or billed_ms < 0:
        return
    Stats.timing(f"{PREFIX}.invocation.billed_duration", billed_ms, tags={"function": name})
    memory_mb = result.summary.get("memorySize")
    if isinstance(memory_mb, int | float) and not isinstance(memory_mb, bool) and memory_mb > 0:
        Stats.incr(f"{PREFIX}.invocation.billed_mb_ms", int(billed_ms * memory_mb), tags={"function": name})


@_never_raises
def invocation_failed(function: str, seconds: float, error: BaseException) -> None:
    """
    A synchronous invocation got no answer from the function: the platform refused it (after the
    hook's retries), or it could not be sent or its answer read.

    Counts ``functiongraph.invocation.platform_error`` (tag ``error_code``) and times the call.

    :param function: the function's name (or URN).
    :param seconds: how long the call took as the client saw it.
    :param error: what the hook raised.
    """
    name = function_tag(function)
    _count_invocation(PLATFORM_ERROR, name, {"function": name, "error_code": error_code_of(error)})
    _time_invocation(PLATFORM_ERROR, name, seconds)


@_never_raises
def invocation_outcome_unknown(function: str) -> None:
    """
    A deferred invocation may have run and its outcome is unknown (a trigger started again found an
    earlier run's claim): ``functiongraph.invocation.outcome_unknown``. The task fails without retrying.

    :param function: the function's name (or URN).
    """
    name = function_tag(function)
    _count_invocation(OUTCOME_UNKNOWN, name, {"function": name})


@_never_raises
def async_invocation_started(function: str) -> None:
    """
    FunctionGraph accepted an asynchronous invocation: ``functiongraph.async_invocation.started``.

    :param function: the function's name (or URN).
    """
    name = function_tag(function)
    _count_invocation(ASYNC_STARTED, name, {"function": name}, ASYNC)


@_never_raises
def async_invocation_not_started(function: str, error: BaseException) -> None:
    """
    An asynchronous invocation was refused (after the hook's retries), or could not be sent or its
    answer read: ``functiongraph.async_invocation.platform_error`` (tag ``error_code``).

    :param function: the function's name (or URN).
    :param error: what the hook raised.
    """
    name = function_tag(function)
    _count_invocation(PLATFORM_ERROR, name, {"function": name, "error_code": error_code_of(error)}, ASYNC)


@_never_raises
def async_invocation_ended(function: str, status: AsyncInvocationStatus) -> None:
    """
    A task waiting for an asynchronous invocation saw it end: ``functiongraph.async_invocation.success``,
    ``.fail`` (tag ``error_code``, the record's) or ``.discard``. Counted by each task that waits for it,
    when it sees the end.

    :param function: the function's name (or URN).
    :param status: the invocation's ended status record.
    """
    outcome = ASYNC_ENDED.get(status.status)
    if outcome is None:
        return  # still pending: not an end
    name = function_tag(function)
    tags = {"function": name}
    if not status.is_success:
        tags["error_code"] = status.error_code or "unknown"
    _count_invocation(outcome, name, tags, ASYNC)


@_never_raises
def answer_throttled(error: ThrottledError, function: str | None = None) -> None:
    """
    FunctionGraph, its API gateway or IAM answered "throttled" (HTTP 429, ``FSS.0429``, ``APIG.0308``):
    ``functiongraph.throttled``, once per answer, whether or not the call is then retried.

    :param error: the throttled answer.
    :param function: the function's name when the call was an invocation.
    """
    Stats.incr(
        f"{PREFIX}.throttled",
        tags={"function": function_tag(function), "error_code": error_code_of(error)},
    )


@_never_raises
def call_retried(error: BaseException, function: str | None = None) -> None:
    """
    The hook sends a call again after ``error`` (its retry policy): ``functiongraph.retries``.

    :param error: the failure that is retried.
    :param function: the function's name when the call is an invocation.
    """
    Stats.incr(
        f"{PREFIX}.retries",
        tags={"function": function_tag(function), "reason": type(error).__name__},
    )


@_never_raises
def token_fetched(auth_type: str) -> None:
    """
    IAM issued a new token (the host had no fresh one): ``functiongraph.iam.token_fetch.success``.

    :param auth_type: the connection's auth mode (``password``).
    """
    Stats.incr(f"{PREFIX}.iam.token_fetch.success", tags={"auth_type": auth_type})


@_never_raises
def token_fetch_failed(auth_type: str, error: BaseException) -> None:
    """
    IAM issued no token (rejected credentials, throttling after the retries, no answer):
    ``functiongraph.iam.token_fetch.failure``.

    :param auth_type: the connection's auth mode (``password``).
    :param error: what the fetch raised.
    """
    Stats.incr(
        f"{PREFIX}.iam.token_fetch.failure",
        tags={"auth_type": auth_type, "error_code": error_code_of(error)},
    )


@_never_raises
def cool_down_started(auth_type: str) -> None:
    """
    IAM or the API gateway rejected a connection's credentials, and this host stops sending them for
    the connection's ``credential_cooldown``: ``functiongraph.cooldown.started``.

    :param auth_type: the connection's auth mode (``aksk``, ``password``).
    """
    Stats.incr(f"{PREFIX}.cooldown.started", tags={"auth_type": auth_type})


@_never_raises
def cool_down_refused_call(auth_type: str) -> None:
    """
    A call was not sent because its credentials are cooling down on this host (the task fails with
    ``CredentialCoolDownError``): ``functiongraph.cooldown.refused``.

    :param auth_type: the connection's auth mode (``aksk``, ``password``).
    """
    Stats.incr(f"{PREFIX}.cooldown.refused", tags={"auth_type": auth_type})
