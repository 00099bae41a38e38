"""FunctionGraphHook: authenticated, retried calls to Huawei Cloud FunctionGraph over ``requests``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from airflow.sdk import BaseHook

from airflow_provider_fgs import __version__
from airflow_provider_fgs.auth import (
    TOKEN_CACHE,
    Response,
    TokenCache,
    TokenProvider,
    authenticate,
    uses_fetched_tokens,
)
from airflow_provider_fgs.connection import KNOWN_EXTRAS, FunctionGraphSettings, parse_connection
from airflow_provider_fgs.hooks.management import FunctionManagementMixin
from airflow_provider_fgs.protocol.errors import (
    AuthenticationError,
    FunctionGraphError,
    InvalidRequestError,
)
from airflow_provider_fgs.protocol.http import RETRYABLE_STATUS, HttpRequest, platform_error
from airflow_provider_fgs.protocol.invoke import InvocationResult, build_invoke_request, parse_invoke_response
from airflow_provider_fgs.protocol.urn import FunctionUrn
from airflow_provider_fgs.retry import (
    TransportError,
    delay_after_first_attempt,
    mark_exhausted,
    retry_arguments,
)

if TYPE_CHECKING:
    import requests

    from airflow_provider_fgs.protocol.async_invoke import AsyncInvocationStatus

T = TypeVar("T")
_log = logging.getLogger(__name__)
USER_AGENT = f"airflow-provider-fgs/{__version__}"


def _mask_secret(value: str) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(value)


@dataclass(frozen=True)
class PreparedCall(Generic[T]):
    """
    A request ready to be authenticated and sent, with how to read its answer.

    Built once and sent by either transport (the sync hook, or the async hook of the triggers).

    :param request: the request, without authentication headers.
    :param parse: turns ``(status, headers, body)`` into the call's result or raises a typed error.
    :param what: the call, for log lines and messages.
    :param idempotent: whether re-sending it after it may have arrived is harmless.
    :param read_timeout: read timeout of this call, ``None`` for the connection's.
    """

    request: HttpRequest
    parse: Callable[[Response], T]
    what: str
    idempotent: bool
    read_timeout: float | None = None


def _raise_if_retryable(response: Response, what: str) -> Response:
    status, headers, body = response
    if status in RETRYABLE_STATUS:
        raise platform_error(status, headers, body, what=what)
    return response


class FunctionGraphHook(FunctionManagementMixin, BaseHook):
    """
    Calls Huawei Cloud FunctionGraph with the credentials of a ``functiongraph`` connection.

    One ``requests.Session`` per hook (keep-alive), TLS verification on unless the connection turns it
    off, a ``(connect, read)`` timeout on every request. IAM tokens are fetched lazily and shared by
    all hooks of the same credentials in the process; a token rejected with 401 is refreshed once and
    the call retried once. AK/SK connections sign every request.

    Retries (bounded exponential backoff with jitter, ``Retry-After`` honoured) follow
    :mod:`airflow_provider_fgs.retry`. A synchronous invocation is not idempotent: it is re-sent only
    when the platform certainly did not run it (HTTP 429, HTTP 503, no connection made), because a
    re-send after the request may have reached the function can run the function twice. Set the
    connection extra ``retry_sync_invoke`` to true to also retry after read timeouts, broken
    connections and other 5xx, for functions that are safe to run twice.

    The hook does not raise when the user's function fails: :meth:`invoke` returns an
    :class:`InvocationResult` with ``is_function_error`` set, and the caller decides.

    :param functiongraph_conn_id: the Airflow connection id.
    :param token_cache: the token cache; the process-wide one by default.
    """

    conn_name_attr = "functiongraph_conn_id"
    default_conn_name = "functiongraph_default"
    conn_type = "functiongraph"
    hook_name = "Huawei Cloud FunctionGraph"

    def __init__(
        self,
        functiongraph_conn_id: str = default_conn_name,
        *,
        token_cache: TokenCache | None = None,
    ) -> None:
        super().__init__()
        self.functiongraph_conn_id = functiongraph_conn_id
        self._token_cache = token_cache or TOKEN_CACHE
        self._session: requests.Session | None = None
        self._session_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(functiongraph_conn_id={self.functiongraph_conn_id!r})"

    # -- connection and settings ------------------------------------------------------------------

    @cached_property
    def settings(self) -> FunctionGraphSettings:
        """The parsed connection (read once per hook); its secrets are registered with the masker."""
        conn = self.get_connection(self.functiongraph_conn_id)
        settings = parse_connection(conn)
        for secret in settings.secrets:
            _mask_secret(secret)
        unknown = sorted(set(conn.extra_dejson or {}) - KNOWN_EXTRAS)
        if unknown:
            self._logger.warning("Connection %r has unknown extra fields: %s", settings.conn_id, unknown)
        return settings

    @cached_property
    def _tokens(self) -> TokenProvider:
        return TokenProvider(
            self.settings, self._send_token_request, cache=self._token_cache, on_new_token=_mask_secret
        )

    @property
    def region(self) -> str:
        """The connection's region."""
        return self.settings.region

    @property
    def project_id(self) -> str:
        """The connection's project id (learnt from the IAM token when only a project name is set)."""
        project_id = self.settings.project_id or self._tokens.project_id()
        if not project_id:
            raise InvalidRequestError(
                f"FunctionGraph connection {self.settings.conn_id!r}: extra 'project_id' is required"
            )
        return project_id

    def get_conn(self) -> requests.Session:
        """The hook's ``requests.Session``, created on first use."""
        with self._session_lock:
            if self._session is None:
                import requests

                session = requests.Session()
                session.verify = self.settings.verify
                session.proxies.update(self.settings.proxies)
                session.headers["User-Agent"] = USER_AGENT
                self._session = session
            return self._session

    def close(self) -> None:
        """Close the session and its pooled connections."""
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def __enter__(self) -> FunctionGraphHook:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- URNs --------------------------------------------------------------------------------------

    def resolve_urn(
        self,
        function_urn: str | FunctionUrn | None = None,
        *,
        function_name: str | None = None,
        package: str | None = None,
        qualifier: str | None = None,
        alias: str | None = None,
    ) -> FunctionUrn:
        """
        A validated URN from a full URN, or from parts completed with the connection's region and project.

        A ``function_urn`` that does not start with ``urn:`` is taken as a function name.

        :param function_urn: a full URN (``urn:fss:...``) or a :class:`FunctionUrn`.
        :param function_name: the function's name, when no URN is given.
        :param package: the function's package (default ``default``).
        :param qualifier: ``latest`` (default) or a version.
        :param alias: an alias name, instead of a qualifier.
        :raises InvalidRequestError: naming the bad or conflicting value, before any network call.
        """
        parts_given = any(part is not None for part in (function_name, package, qualifier, alias))
        if isinstance(function_urn, FunctionUrn) and not parts_given:
            return function_urn  # already validated
        if isinstance(function_urn, FunctionUrn):
            urn_text: str | None = str(function_urn)
        else:
            urn_text = function_urn.strip() if isinstance(function_urn, str) else function_urn
        if urn_text is not None and not isinstance(urn_text, str):
            raise InvalidRequestError(f"Invalid function_urn {function_urn!r}: expected a string")
        if urn_text and urn_text.startswith("urn:"):
            given = {
                "function_name": function_name,
                "package": package,
                "qualifier": qualifier,
                "alias": alias,
            }
            extra = [name for name, value in given.items() if value is not None]
            if extra:
                raise InvalidRequestError(
                    f"Give either function_urn {urn_text!r} or its parts {extra}, not both"
                )
            return FunctionUrn.parse(urn_text)
        if urn_text:
            if function_name is not None and function_name != urn_text:
                raise InvalidRequestError(
                    f"Give either function_urn {urn_text!r} or function_name {function_name!r}, not both"
                )
            function_name = urn_text
        if not function_name:
            raise InvalidRequestError("Give function_urn or function_name to name the function to call")
        return FunctionUrn.from_parts(
            region=self.region,
            project_id=self.project_id,
            name=function_name,
            package=package,
            qualifier=qualifier,
            alias=alias,
        )

    # -- API ---------------------------------------------------------------------------------------

    def invoke(
        self,
        function_urn: str | FunctionUrn,
        payload: Any = None,
        *,
        log_type: str | None = "tail",
        request_version: str = "v1",
        instance_memory: int | str | None = None,
        timeout: float | None = None,
        deserialize: bool = True,
    ) -> InvocationResult:
        """
        Invoke a function synchronously.

        :param function_urn: a full URN, a :class:`FunctionUrn`, or a function name in the connection's
            project.
        :param payload: the event: a JSON-serializable value, or a JSON ``str``/``bytes``.
        :param log_type: ``"tail"`` to get the end of the function's log, ``None``/``"none"`` for none.
        :param request_version: ``"v1"`` (JSON envelope) or ``"v0"`` (raw result).
        :param instance_memory: instance memory in MB for this call.
        :param timeout: read timeout in seconds for this call (default: the connection's read timeout).
        :param deserialize: JSON-decode the result when it is JSON.
        :return: the result; ``is_function_error`` tells whether the function failed.
        :raises InvalidRequestError: bad input, before any network call.
        :raises FunctionGraphApiError: the platform refused the call (typed subclasses).
        """
        return self._call(
            self._prepare_invoke(
                function_urn,
                payload,
                log_type=log_type,
                request_version=request_version,
                instance_memory=instance_memory,
                timeout=timeout,
                deserialize=deserialize,
            )
        )

    def _prepare_invoke(
        self,
        function_urn: str | FunctionUrn,
        payload: Any,
        *,
        log_type: str | None,
        request_version: str,
        instance_memory: int | str | None,
        timeout: float | None,
        deserialize: bool,
    ) -> PreparedCall[InvocationResult]:
        """The invoke request of :meth:`invoke` and how to read its answer (shared with the async hook)."""
        urn = self.resolve_urn(function_urn)
        request = build_invoke_request(
            self.settings.endpoint,
            urn,
            payload,
            log_type=log_type,
            request_version=request_version,
            instance_memory=instance_memory,
        )
        name = str(urn)

        def parse(response: Response) -> InvocationResult:
            status, headers, body = response
            return parse_invoke_response(
                status,
                headers,
                body,
                function=name,
                request_version=request_version,
                deserialize=deserialize,
            )

        return PreparedCall(
            request,
            parse,
            what=f"invoke of {name}",
            idempotent=self.settings.retry.retry_sync_invoke,
            read_timeout=timeout,
        )

    def invoke_async(self, function_urn: str | FunctionUrn, payload: Any = None) -> str:
        """
        Start an asynchronous invocation.

        Not idempotent either (each accepted request is a run): retried like :meth:`invoke`.

        :return: the request id of the invocation.
        """
        from airflow_provider_fgs.protocol.async_invoke import (
            build_async_invoke_request,
            parse_async_invoke_response,
        )

        urn = self.resolve_urn(function_urn)
        request = build_async_invoke_request(self.settings.endpoint, urn, payload)
        name = str(urn)

        def parse(response: Response) -> str:
            return parse_async_invoke_response(*response, function=name)

        return self._call(
            PreparedCall(
                request,
                parse,
                what=f"async invoke of {name}",
                idempotent=self.settings.retry.retry_sync_invoke,
            )
        )

    def get_async_invocation(
        self, function_urn: str | FunctionUrn, request_id: str
    ) -> AsyncInvocationStatus | None:
        """The status of an asynchronous invocation, ``None`` when the platform has no record (yet)."""
        return self._call(self._prepare_async_status(function_urn, request_id))

    def _prepare_async_status(
        self, function_urn: str | FunctionUrn, request_id: str
    ) -> PreparedCall[AsyncInvocationStatus | None]:
        """The status query of :meth:`get_async_invocation` (shared with the async hook)."""
        from airflow_provider_fgs.protocol.async_invoke import (
            build_async_status_request,
            parse_async_status_response,
        )

        urn = self.resolve_urn(function_urn)
        request = build_async_status_request(self.settings.endpoint, urn, request_id)
        name = str(urn)

        def parse(response: Response) -> AsyncInvocationStatus | None:
            return parse_async_status_response(*response, request_id=request_id, function=name)

        return PreparedCall(request, parse, what=f"async status query of {name}", idempotent=True)

    def test_connection(self) -> tuple[bool, str]:
        """
        Check the connection for the UI's Test button.

        Password mode fetches an IAM token; AK/SK and pre-issued token modes make a signed (or
        token-authenticated) read call listing one function. Never raises.
        """
        try:
            settings = self.settings
            if uses_fetched_tokens(settings):
                self._tokens.token()
                return True, (
                    f"IAM issued a token for {settings.principal} at {settings.iam_endpoint}; "
                    f"project {self.project_id}"
                )
            project_id = self.project_id
            request = HttpRequest(
                method="GET",
                url=f"{settings.endpoint}/v2/{project_id}/fgs/functions?maxitems=1",
                headers={"Content-Type": "application/json", "X-Project-Id": project_id},
            )

            def parse(response: Response) -> int:
                status, headers, body = response
                if status >= 400:
                    raise platform_error(status, headers, body, what="listing functions")
                return status

            self._call(PreparedCall(request, parse, what="listing functions", idempotent=True))
            return True, f"FunctionGraph at {settings.endpoint} accepted {settings.principal}"
        except FunctionGraphError as err:
            return False, str(err)
        except Exception as err:  # the Test button must show a message, not a traceback
            return False, f"{type(err).__name__}: {err}"

    # -- transport ---------------------------------------------------------------------------------

    def _send_token_request(self, request: HttpRequest) -> Response:
        """Send an IAM token request (idempotent): retried on throttling, 5xx and transport errors."""
        what = f"IAM token request for {self.settings.principal}"
        return self._retrying(
            lambda: _raise_if_retryable(self._exchange(request, None), what), what=what, idempotent=True
        )

    def _call(self, call: PreparedCall[T]) -> T:
        """Authenticate, send and parse ``call`` with retries and the one-time refresh on 401."""

        def attempt() -> T:
            settings = self.settings
            if settings.auth_type == "aksk":
                return call.parse(self._exchange(authenticate(call.request, settings), call.read_timeout))
            token = self._tokens.token()
            response = self._exchange(authenticate(call.request, settings, token=token), call.read_timeout)
            if response[0] == 401:
                self._drop_rejected_token(response, token, call.what)
                token = self._tokens.token()
                response = self._exchange(
                    authenticate(call.request, settings, token=token), call.read_timeout
                )
                self._raise_if_rejected_again(response, call.what)
            return call.parse(response)

        return self._retrying(attempt, what=call.what, idempotent=call.idempotent)

    def _drop_rejected_token(self, response: Response, token: str, what: str) -> None:
        """After a 401: forget ``token`` so the next fetch is fresh (a pre-issued token cannot be)."""
        if not uses_fetched_tokens(self.settings):
            raise self._auth_error(response, what, "the pre-issued token was rejected")
        self._logger.info("FunctionGraph rejected the IAM token for %s; fetching a new one", what)
        self._tokens.invalidate(token)

    def _raise_if_rejected_again(self, response: Response, what: str) -> None:
        if response[0] == 401:
            raise self._auth_error(response, what, "a freshly fetched token was rejected too")

    def _auth_error(self, response: Response, what: str, why: str) -> AuthenticationError:
        status, headers, body = response
        error = platform_error(status, headers, body, what=what)
        return AuthenticationError(
            f"{error} ({why}; credentials of {self.settings.principal})",
            http_status=status,
            error_code=error.error_code,
            error_msg=error.error_msg,
            request_id=error.request_id,
        )

    def _retrying(self, fn: Callable[[], T], *, what: str, idempotent: bool) -> T:
        """``fn()`` under the retry policy: a first plain attempt, then tenacity after a retryable failure."""
        settings = self.settings.retry
        try:
            try:
                return fn()
            except Exception as exc:
                delay = delay_after_first_attempt(
                    exc, settings, idempotent=idempotent, what=what, logger=self._logger
                )
                if delay is None:
                    raise
            time.sleep(delay)
            from tenacity import Retrying

            retrying = Retrying(
                **retry_arguments(
                    settings, idempotent=idempotent, what=what, logger=self._logger, attempts_done=1
                )
            )
            return retrying(fn)
        except FunctionGraphError as err:
            mark_exhausted(err)
            raise

    @property
    def _logger(self) -> logging.Logger:
        """A stdlib logger: Airflow routes it to the task log, and pytest's caplog sees it."""
        return _log

    def _exchange(self, request: HttpRequest, read_timeout: float | None) -> Response:
        """One HTTP exchange; transport failures become :class:`TransportError`."""
        import requests

        settings = self.settings
        timeout = (settings.connect_timeout, read_timeout or settings.read_timeout)
        try:
            response = self.get_conn().request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body or None,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.RequestException as err:
            raise _transport_error(err, request) from None
        return response.status_code, response.headers, response.content


def _transport_error(err: Exception, request: HttpRequest) -> TransportError:
    import requests

    target = f"{request.method} {request.url.split('?', 1)[0]}"
    if isinstance(err, requests.exceptions.SSLError):
        return TransportError(f"TLS failure talking to {target}: {err}", request_sent=False, retryable=False)
    if isinstance(err, requests.exceptions.ConnectTimeout) or _never_connected(err):
        return TransportError(f"Could not connect for {target}: {err}", request_sent=False)
    if isinstance(err, requests.exceptions.ReadTimeout):
        return TransportError(
            f"No answer within the read timeout for {target} (the request was sent): {err}", request_sent=True
        )
    # A body cut short after the headers (ChunkedEncodingError) is a broken connection too, as in httpx.
    if isinstance(err, requests.exceptions.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return TransportError(
            f"Connection broke during {target} (the request may have reached the server): {err}",
            request_sent=None,
        )
    return TransportError(f"HTTP failure during {target}: {err}", request_sent=None, retryable=False)


def _never_connected(err: BaseException) -> bool:
    """Whether the failure happened while establishing the connection (request certainly not sent)."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    seen: set[int] = set()
    pending: list[Any] = [err]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectTimeoutError | ConnectionRefusedError):
            return True
        if isinstance(current, BaseException):
            pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
            pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return False
