"""The retry policy (PROTOCOL.md section 4), as tenacity arguments usable by sync and async code.

What is retried depends on whether the call is idempotent:

* idempotent calls (IAM token, status queries, listings): throttling, transient 5xx/408 and any
  transport failure;
* a synchronous (or asynchronous) invocation is **not** idempotent: a retry after the request may
  have reached the function can run it twice. It is retried only when the request provably never
  reached the function: HTTP 429 (throttled before admission), or a connection that could not be
  established. Everything else (a connection that broke after the request was sent, a read timeout,
  any 5xx including 503) is not retried, unless the connection opts in with ``retry_sync_invoke``.
  FunctionGraph documents ``FSS.0503`` only as "service unavailable", not as "the function did not
  run", so a 503 is no proof (see docs/delivery-semantics.md).

Never retried: authentication failures (five AK/SK failures in a row lock the key), other 4xx, and
failures of the user's function (those are not exceptions at this layer).
"""

from __future__ import annotations

import random
from contextlib import suppress
from typing import Any, Protocol

from tenacity import RetryCallState, retry_if_exception, stop_after_attempt

from airflow_provider_fgs.client import metrics
from airflow_provider_fgs.client.settings import RetrySettings
from airflow_provider_fgs.protocol.errors import ServiceUnavailableError, ThrottledError


class RetryLogger(Protocol):
    """A stdlib or structlog logger."""

    def warning(self, msg: str, *args: Any) -> Any: ...


class TransportError(ServiceUnavailableError):
    """
    The HTTP exchange failed without a response (refused, reset, timed out, TLS failure).

    :param request_sent: ``False`` when the request certainly never left (no connection was made),
        ``True``/``None`` when it may have reached the server.
    """

    def __init__(self, message: str, *, request_sent: bool | None, retryable: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent
        self.retryable = retryable


EXHAUSTED_ATTR = "fgs_retries_exhausted"


def mark_exhausted(exc: BaseException) -> None:
    """
    Mark ``exc`` as the final error of a retry loop, so an enclosing loop does not retry it again.

    The IAM token fetch has its own retry loop and runs inside the loop of the call that needs the
    token; without the mark, the attempts would multiply.
    """
    with suppress(AttributeError):  # exceptions with __slots__
        setattr(exc, EXHAUSTED_ATTR, True)


NOT_RESENT_NOTE = (
    "The call was not re-sent: the function may have run, and running it twice is not safe in general. "
    "For a function that is safe to run twice, set the connection extra retry_sync_invoke to true to "
    "re-send after a read timeout or a broken connection."
)


def note_not_resent(exc: BaseException, *, idempotent: bool) -> None:
    """Say in the message of ``exc`` that a call that may have arrived was not re-sent, and how to opt in."""
    if idempotent or not isinstance(exc, TransportError) or exc.request_sent is False:
        return
    if exc.args and isinstance(exc.args[0], str) and NOT_RESENT_NOTE not in exc.args[0]:
        exc.args = (f"{exc.args[0]}. {NOT_RESENT_NOTE}", *exc.args[1:])


def should_retry(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether ``exc`` is worth another attempt of a call that is (or is not) ``idempotent``."""
    if getattr(exc, EXHAUSTED_ATTR, False):
        return False
    if isinstance(exc, TransportError):
        return exc.retryable and (idempotent or exc.request_sent is False)
    if isinstance(exc, ThrottledError):
        return True
    if isinstance(exc, ServiceUnavailableError):
        return idempotent
    return False


def backoff_seconds(settings: RetrySettings, attempt: int, exc: BaseException | None) -> float:
    """
    Wait before attempt ``attempt + 1``: exponential from ``min_wait`` with jitter, capped at
    ``max_wait``, and at least the server's ``Retry-After`` (itself capped at ``retry_after_cap``).
    """
    exponential: float = settings.min_wait * 2.0 ** max(attempt - 1, 0)
    wait = min(settings.max_wait, exponential + random.uniform(0, settings.min_wait))
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float) and retry_after > 0:
        wait = max(wait, min(float(retry_after), settings.retry_after_cap))
    return wait


def attempt_failed(exc: BaseException, function: str | None = None) -> None:
    """
    Count a failed attempt that was a throttled answer in the metrics (once: an error that ended an
    inner retry loop, such as the token fetch's, was counted there).
    """
    if isinstance(exc, ThrottledError) and not getattr(exc, EXHAUSTED_ATTR, False):
        metrics.answer_throttled(exc, function)


def log_retry(
    logger: RetryLogger,
    what: str,
    delay: float,
    attempt: int,
    attempts: int,
    exc: BaseException,
    function: str | None = None,
) -> None:
    """The log line of one retry, with its reason; the retry is counted in the metrics."""
    metrics.call_retried(exc, function)
    logger.warning(
        "Retrying %s in %.2f s (attempt %d of %d failed): %s: %s",
        what,
        delay,
        attempt,
        attempts,
        type(exc).__name__,
        exc,
    )


def delay_after_first_attempt(
    exc: BaseException,
    settings: RetrySettings,
    *,
    idempotent: bool,
    what: str,
    logger: RetryLogger,
    function: str | None = None,
) -> float | None:
    """
    After the first attempt failed with ``exc``: the wait before the second (logged), or ``None``
    when ``exc`` must be raised as it is.

    The first attempt runs outside tenacity, so a call that succeeds at once (nearly all of them) pays
    none of its per-call machinery; only a retryable failure enters the loop of :func:`retry_arguments`.

    :param function: the function's name when the call is an invocation (for the metrics' tags).
    """
    attempt_failed(exc, function)
    if settings.attempts < 1 or not should_retry(exc, idempotent=idempotent):
        return None
    delay = backoff_seconds(settings, 1, exc)
    log_retry(logger, what, delay, 1, settings.attempts + 1, exc, function)
    return delay


def retry_arguments(
    settings: RetrySettings,
    *,
    idempotent: bool,
    what: str,
    logger: RetryLogger,
    attempts_done: int = 0,
    function: str | None = None,
) -> dict[str, Any]:
    """
    Keyword arguments for ``tenacity.Retrying`` / ``tenacity.AsyncRetrying``.

    :param idempotent: whether re-sending is harmless (see the module docstring).
    :param what: the call, for the retry log lines, e.g. ``"invoke of urn:fss:..."``.
    :param attempts_done: attempts already made before this loop (numbering, backoff and the budget
        continue from there).
    :param function: the function's name when the call is an invocation (for the metrics' tags).
    """
    attempts = settings.attempts + 1

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        return backoff_seconds(settings, state.attempt_number + attempts_done, exc)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        if exc is not None:
            log_retry(logger, what, delay, state.attempt_number + attempts_done, attempts, exc, function)

    def retry(exc: BaseException) -> bool:
        attempt_failed(exc, function)
        return should_retry(exc, idempotent=idempotent)

    return {
        "retry": retry_if_exception(retry),
        "stop": stop_after_attempt(attempts - attempts_done),
        "wait": wait,
        "before_sleep": before_sleep,
        "reraise": True,
    }
