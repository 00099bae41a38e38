"""The retry policy: what is retried for idempotent and non-idempotent calls, and how long to wait."""

from __future__ import annotations

import pytest

from airflow_provider_fgs.client.retry import TransportError, backoff_seconds, mark_exhausted, should_retry
from airflow_provider_fgs.client.settings import RetrySettings
from airflow_provider_fgs.protocol.errors import (
    AuthenticationError,
    FunctionGraphApiError,
    InvalidRequestError,
    ServiceUnavailableError,
    ThrottledError,
)


@pytest.mark.parametrize(
    ("exc", "sync_invoke", "idempotent_call"),
    [
        (ThrottledError("429", http_status=429), True, True),
        (ServiceUnavailableError("503", http_status=503), False, True),
        (ServiceUnavailableError("500", http_status=500), False, True),
        (ServiceUnavailableError("502", http_status=502), False, True),
        (ServiceUnavailableError("504", http_status=504), False, True),
        (TransportError("refused", request_sent=False), True, True),
        (TransportError("reset", request_sent=None), False, True),
        (TransportError("read timeout", request_sent=True), False, True),
        (TransportError("tls", request_sent=False, retryable=False), False, False),
        (AuthenticationError("401", http_status=401), False, False),
        (FunctionGraphApiError("404", http_status=404), False, False),
        (InvalidRequestError("bad"), False, False),
        (RuntimeError("bug"), False, False),
    ],
)
def test_should_retry(exc: BaseException, sync_invoke: bool, idempotent_call: bool) -> None:
    assert should_retry(exc, idempotent=False) is sync_invoke
    assert should_retry(exc, idempotent=True) is idempotent_call


def test_backoff_grows_and_is_capped() -> None:
    settings = RetrySettings(min_wait=0.5, max_wait=4.0)
    for attempt, low in [(1, 0.5), (2, 1.0), (3, 2.0)]:
        wait = backoff_seconds(settings, attempt, None)
        assert low <= wait <= low + 0.5
    assert backoff_seconds(settings, 10, None) == 4.0


def test_retry_after_raises_the_wait_up_to_its_cap() -> None:
    settings = RetrySettings(min_wait=0.1, max_wait=1.0, retry_after_cap=5.0)
    assert backoff_seconds(settings, 1, ThrottledError("t", retry_after=3.0)) == 3.0
    assert backoff_seconds(settings, 1, ThrottledError("t", retry_after=3600.0)) == 5.0
    assert backoff_seconds(settings, 1, ThrottledError("t", retry_after=0.0)) <= 0.2


def test_an_error_that_exhausted_an_inner_loop_is_not_retried_again() -> None:
    error = ThrottledError("429 from IAM", http_status=429)
    mark_exhausted(error)
    assert not should_retry(error, idempotent=True)
