"""What a call does beyond one HTTP exchange, written once for both transports.

A *flow* is a generator that yields :data:`Step` values and receives their outcomes, as httpx's
``Auth.auth_flow`` does: authenticating a call, refreshing a rejected token once, the retry policy with
its waits and the metrics of an invocation are all decided here, without I/O. A transport's driver
(:func:`drive` for ``requests``, :func:`adrive` for the event loop) performs each step: one HTTP
exchange, a wait, or work that may block (a token fetch, a file lock of the host cache), which the
event loop runs in a worker thread. So the sync and the deferrable paths cannot drift apart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from tenacity import Retrying

from airflow_provider_fgs.client import metrics
from airflow_provider_fgs.client.calls import PreparedCall
from airflow_provider_fgs.client.cooldown import CredentialCoolDowns
from airflow_provider_fgs.client.credentials import authenticate, uses_fetched_tokens
from airflow_provider_fgs.client.retry import (
    delay_after_first_attempt,
    mark_exhausted,
    note_not_resent,
    retry_arguments,
)
from airflow_provider_fgs.client.settings import FunctionGraphSettings
from airflow_provider_fgs.client.sourced_credentials import SourcedCredentials
from airflow_provider_fgs.client.tokens import TokenProvider
from airflow_provider_fgs.protocol.errors import AuthenticationError, FunctionGraphError
from airflow_provider_fgs.protocol.http import (
    RETRYABLE_STATUS,
    HttpRequest,
    Response,
    is_token_rejected,
    platform_error,
)
from airflow_provider_fgs.protocol.invoke import InvocationResult

T = TypeVar("T")
PROBE_TIMEOUT_S = 3.0
"""Connect and read timeouts of a probe (the metadata service: the Huawei SDK gives it 3 s)."""


@dataclass(frozen=True)
class Exchange:
    """
    Send one request and receive ``(status, headers, body)``.

    :param request: the request, authenticated.
    :param read_timeout: its read timeout, ``None`` for the connection's.
    :param first_use: send it under these credentials' first-use turn (one request at a time on the host
        while the API gateway has not accepted them yet) and, still holding the turn, pass the answer to
        ``settle``, which records the gateway's verdict.
    :param settle: with ``first_use``: records the verdict and raises when the credentials were rejected.
    :param connect_timeout: its connect timeout, ``None`` for the connection's.
    """

    request: HttpRequest
    read_timeout: float | None
    first_use: CredentialCoolDowns | None = None
    settle: Callable[[Response], None] | None = None
    connect_timeout: float | None = None


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` before the next attempt."""

    seconds: float


@dataclass(frozen=True)
class Blocking:
    """Run ``work`` (a token fetch, a host cache file lock), which may block: off the event loop."""

    work: Callable[[], Any]


@dataclass(frozen=True)
class BeforeRetry:
    """
    An attempt after the first is about to start (the caller may want to know: a trigger renews its claim,
    a batch backs off when the platform throttles).

    :param error: why the attempt before it failed.
    """

    error: BaseException | None


Step = Exchange | Sleep | Blocking | BeforeRetry
Flow = Generator[Step, Any, T]


def drive(flow: Flow[T], perform: Callable[[Step], Any]) -> T:
    """Run ``flow`` to its end, performing each step with ``perform`` in this thread."""
    outcome: Any = None
    error: Exception | None = None
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(outcome)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        outcome, error = None, None
        try:
            outcome = perform(step)
        except Exception as exc:
            error = exc
        except BaseException:
            flow.close()
            raise


async def adrive(flow: Flow[T], perform: Callable[[Step], Awaitable[Any]]) -> T:
    """Run ``flow`` to its end on the event loop, awaiting each step's ``perform``."""
    outcome: Any = None
    error: Exception | None = None
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(outcome)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        outcome, error = None, None
        try:
            outcome = await perform(step)
        except Exception as exc:
            error = exc
        except BaseException:  # cancelled: the flow ends here, its retries with it
            flow.close()
            raise


class CallSender:
    """
    Sends prepared calls of one connection: authentication (AK/SK signature, temporary credentials from
    the credential chain, or IAM token), the one-time refresh of a token or temporary credentials after a
    rejection, cool-downs of rejected credentials, retries and the metrics of an invocation. Every method
    returns a :data:`Flow`.

    :param settings: the connection's settings.
    :param tokens: the connection's IAM tokens.
    :param cool_downs: the cool-downs of the connection's credentials.
    :param logger: where retries are logged.
    :param sourced: the connection's temporary credentials, when it stores no secret.
    """

    def __init__(
        self,
        settings: FunctionGraphSettings,
        tokens: TokenProvider,
        cool_downs: CredentialCoolDowns,
        logger: logging.Logger,
        sourced: SourcedCredentials | None = None,
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.cool_downs = cool_downs
        self.logger = logger
        self.sourced = sourced

    def send(self, call: PreparedCall[T]) -> Flow[T]:
        """Authenticate, send and parse ``call``; the outcome of an invocation goes to the metrics."""
        function = call.invoked_function
        attempt = partial(self._attempt, call)
        if function is None:
            return (yield from self._retrying(attempt, call.what, call.idempotent))
        started = time.monotonic()
        try:
            result = yield from self._retrying(attempt, call.what, call.idempotent, function)
        except Exception as err:
            metrics.invocation_failed(function, time.monotonic() - started, err)
            raise
        if isinstance(result, InvocationResult):
            metrics.invocation_answered(function, time.monotonic() - started, result)
        return result

    def send_token_request(self, request: HttpRequest) -> Flow[Response]:
        """Send an IAM token request (idempotent): retried on throttling, 5xx and transport failures."""
        what = f"IAM token request for {self.settings.principal}"
        self.cool_downs.check()
        return (yield from self._retrying(partial(self._unauthenticated, request, what), what, True))

    def fetch(self, request: HttpRequest, what: str, probe: bool) -> Flow[Response]:
        """
        Send a request of the credential chain (unauthenticated, idempotent): retried like a token request,
        or, as a ``probe`` (is there a metadata service here?), sent once with short timeouts.
        """
        self.cool_downs.check()
        if probe:
            response: Response = yield Exchange(request, PROBE_TIMEOUT_S, connect_timeout=PROBE_TIMEOUT_S)
            return response
        return (yield from self._retrying(partial(self._unauthenticated, request, what), what, True))

    def token(self) -> Flow[str]:
        """The connection's token: from the process's cache, else fetched (blocking, once per process)."""
        cached = self.tokens.cached()
        if cached is not None:
            return cached
        token: str = yield Blocking(self.tokens.token)
        return token

    def _retrying(
        self, attempt: Callable[[], Flow[T]], what: str, idempotent: bool, function: str | None = None
    ) -> Flow[T]:
        """
        ``attempt`` under the retry policy: a first plain attempt, then tenacity after a retryable failure.

        :param function: the function's name when the call is an invocation (for the metrics' tags).
        """
        settings = self.settings.retry
        try:
            try:
                return (yield from attempt())
            except Exception as exc:
                delay = delay_after_first_attempt(
                    exc, settings, idempotent=idempotent, what=what, logger=self.logger, function=function
                )
                if delay is None:
                    raise
                failed: Exception = exc
            yield Sleep(delay)
            yield BeforeRetry(failed)
            waits: list[float] = []
            retrying = Retrying(
                sleep=waits.append,  # the flow's driver waits, not tenacity
                **retry_arguments(
                    settings,
                    idempotent=idempotent,
                    what=what,
                    logger=self.logger,
                    attempts_done=1,
                    function=function,
                ),
            )
            result: T
            for retry in retrying:
                if waits:
                    yield Sleep(waits.pop())
                    yield BeforeRetry(failed)
                with retry:
                    try:
                        result = yield from attempt()
                    except Exception as exc:
                        failed = exc
                        raise
            return result
        except FunctionGraphError as err:
            mark_exhausted(err)
            note_not_resent(err, idempotent=idempotent)
            raise

    def _unauthenticated(self, request: HttpRequest, what: str) -> Flow[Response]:
        response: Response = yield Exchange(request, None)
        status, headers, body = response
        if status in RETRYABLE_STATUS:
            raise platform_error(status, headers, body, what=what)
        return response

    def _attempt(self, call: PreparedCall[T]) -> Flow[T]:
        self.cool_downs.check()  # reads one small local file at most
        if self.settings.auth_type == "aksk":
            response = yield from self._signed_exchange(call)
        elif self.sourced is not None:
            response = yield from self._sourced_exchange(call, self.sourced)
        else:
            response = yield from self._token_exchange(call)
        return call.parse(response)

    def _sourced_exchange(self, call: PreparedCall[Any], sourced: SourcedCredentials) -> Flow[Response]:
        """Sign with the temporary credentials; refused: fetch new ones (blocking) and send once more."""
        credentials = sourced.cached() or (yield Blocking(sourced.credentials))
        request = authenticate(call.request, self.settings, credentials=credentials)
        response: Response = yield Exchange(request, call.read_timeout)
        if not is_token_rejected(response[0], response[2]):
            return response
        self.logger.info(
            "FunctionGraph refused the temporary credentials for %s; fetching new ones", call.what
        )
        yield Blocking(partial(sourced.invalidate, credentials))
        credentials = yield Blocking(sourced.credentials)
        response = yield Exchange(
            authenticate(call.request, self.settings, credentials=credentials), call.read_timeout
        )
        if is_token_rejected(response[0], response[2]):
            error = self.auth_error(
                response, call.what, f"fresh credentials from {credentials.source} were refused too"
            )
            yield Blocking(partial(self.cool_downs.record, error))
            raise error
        return response

    def _signed_exchange(self, call: PreparedCall[Any]) -> Flow[Response]:
        """Send a signed request; until the AK/SK is accepted on the host, under its first-use turn."""
        settle = partial(self._settle_signature, what=call.what)
        request = authenticate(call.request, self.settings)
        if self.cool_downs.needs_first_use_turn:
            exchange = Exchange(request, call.read_timeout, first_use=self.cool_downs, settle=settle)
            settled: Response = yield exchange
            return settled
        response: Response = yield Exchange(request, call.read_timeout)
        if response[0] == 401:
            yield Blocking(partial(settle, response))  # records the cool-down in the host cache, raises
        return response

    def _token_exchange(self, call: PreparedCall[Any]) -> Flow[Response]:
        token = yield from self.token()
        response: Response = yield Exchange(
            authenticate(call.request, self.settings, token=token), call.read_timeout
        )
        if not is_token_rejected(response[0], response[2]):
            return response
        # Forgetting the token takes the host cache's file lock: blocking.
        yield Blocking(partial(self._drop_rejected_token, response, token, call.what))
        token = yield Blocking(self.tokens.token)
        response = yield Exchange(authenticate(call.request, self.settings, token=token), call.read_timeout)
        if is_token_rejected(response[0], response[2]):
            raise self.auth_error(response, call.what, "a freshly fetched token was rejected too")
        return response

    def _settle_signature(self, response: Response, *, what: str) -> None:
        """After an answer to a signed request: a 401 starts the credential's cool-down and raises."""
        if response[0] == 401:
            error = self.auth_error(response, what, "the AK/SK signature was rejected")
            self.cool_downs.record(error)
            raise error
        self.cool_downs.accepted()

    def _drop_rejected_token(self, response: Response, token: str, what: str) -> None:
        """After a token rejection (401, 403 invalid token): forget ``token`` so the next fetch is fresh."""
        if not uses_fetched_tokens(self.settings):
            raise self.auth_error(response, what, "the pre-issued token was rejected")
        self.logger.info("FunctionGraph rejected the IAM token for %s; fetching a new one", what)
        self.tokens.invalidate(token)

    def auth_error(self, response: Response, what: str, why: str) -> AuthenticationError:
        """The :class:`AuthenticationError` of a rejected request, naming who was rejected (no secret)."""
        status, headers, body = response
        error = platform_error(status, headers, body, what=what)
        return AuthenticationError(
            f"{error} ({why}; credentials of {self.settings.principal})",
            http_status=status,
            error_code=error.error_code,
            error_msg=error.error_msg,
            request_id=error.request_id,
        )
