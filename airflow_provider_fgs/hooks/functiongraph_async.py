"""FunctionGraphAsyncHook: the hook's calls over ``httpx.AsyncClient``, for triggers in the triggerer."""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from airflow_provider_fgs.client import metrics
from airflow_provider_fgs.client.keepalive import keepalive_socket_options
from airflow_provider_fgs.client.retry import (
    TransportError,
    delay_after_first_attempt,
    note_not_resent,
    retry_arguments,
)
from airflow_provider_fgs.client.settings import FunctionGraphSettings
from airflow_provider_fgs.client.settings_cache import UNREAD, FunctionSettingsCache
from airflow_provider_fgs.client.tokens import Response, authenticate, uses_fetched_tokens
from airflow_provider_fgs.compat import to_thread
from airflow_provider_fgs.hooks.functiongraph import (
    USER_AGENT,
    FunctionGraphHook,
    PreparedCall,
    _async_invoke_configs,
    _function_configs,
    as_invocation,
)
from airflow_provider_fgs.protocol.async_invoke import MAX_STATUS_PAGES, AsyncInvocationStatus
from airflow_provider_fgs.protocol.async_invoke_config import AsyncInvokeConfig
from airflow_provider_fgs.protocol.errors import AuthenticationError, FunctionGraphError
from airflow_provider_fgs.protocol.functions import FunctionConfig
from airflow_provider_fgs.protocol.http import HttpRequest, is_token_rejected
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.protocol.invoke import InvocationResult
from airflow_provider_fgs.protocol.urn import FunctionUrn

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")
CONNECTION_TTL_S = 30.0
"""How long a triggerer process reuses a connection it has read for the next triggers that name it."""
_connections: dict[str, tuple[float, FunctionGraphSettings]] = {}
"""``conn_id`` -> (when read, its settings), shared by the hooks of the process (the triggerer's triggers)."""


class FunctionGraphAsyncHook(FunctionGraphHook):
    """
    The asynchronous twin of :class:`FunctionGraphHook`, used by the deferrable triggers.

    Requests are built and responses parsed by the same protocol functions as the sync hook, and the
    same retry policy applies, so both paths behave alike. The connection is read through Airflow's
    sync API in a worker thread, and IAM tokens come from the process-wide token cache (one fetch per
    connection in the triggerer, refreshed before expiry, once after a 401) also in a worker thread:
    a token is fetched about once a day, while the invocation itself never blocks the event loop.

    Use it as an async context manager so the ``httpx.AsyncClient`` is closed, also on cancellation.

    :param functiongraph_conn_id: the Airflow connection id.
    """

    def __init__(self, functiongraph_conn_id: str = FunctionGraphHook.default_conn_name) -> None:
        super().__init__(functiongraph_conn_id)
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> FunctionGraphAsyncHook:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the ``httpx.AsyncClient`` and its pooled connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
        self.close()

    async def asettings(self) -> FunctionGraphSettings:
        """
        The parsed connection; read in a worker thread the first time (the connection API is sync).

        A triggerer runs many triggers of one connection, and each read is a request to its supervisor:
        the process reuses a connection it read for :data:`CONNECTION_TTL_S`, or until it is refused.
        """
        if "settings" in self.__dict__:  # the cached_property is already filled: no thread hop
            return self.settings
        # Triggers started together wait for the first one's read instead of all reading at once.
        async with _first_use_gate(f"connection {self.functiongraph_conn_id}"):
            known = _connections.get(self.functiongraph_conn_id)
            if known is not None and time.monotonic() - known[0] < CONNECTION_TTL_S:
                self.__dict__["settings"] = known[1]
                return known[1]
            settings = await to_thread(lambda: self.settings)
            _connections[self.functiongraph_conn_id] = (time.monotonic(), settings)
            return settings

    def _forget_connection(self) -> None:
        """Read the connection again next time (its credentials were refused: it may have been fixed)."""
        _connections.pop(self.functiongraph_conn_id, None)

    def _async_client(self, settings: FunctionGraphSettings) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            connect, read = settings.timeouts
            transport = httpx.AsyncHTTPTransport(
                verify=_ssl_context(settings.verify),
                proxy=settings.proxies.get("https") or settings.proxies.get("http"),
                socket_options=keepalive_socket_options(),
            )
            # The proxy is the transport's: a client-level proxy would mount a transport without keepalive.
            self._client = httpx.AsyncClient(
                transport=transport,
                verify=_ssl_context(settings.verify),  # for proxies from the environment
                timeout=httpx.Timeout(read, connect=connect),
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
            )
        return self._client

    async def ainvoke(
        self, function_urn: str | FunctionUrn | Invocation | None = None, payload: Any = None, **options: Any
    ) -> InvocationResult:
        """
        Invoke a function synchronously without blocking the event loop: the same arguments as
        :meth:`~airflow_provider_fgs.hooks.functiongraph.FunctionGraphHook.invoke`.
        """
        _, call = await self.aprepare_invoke(as_invocation(function_urn, payload, **options))
        return await self.asend(call)

    async def aprepare_invoke(
        self, invocation: Invocation
    ) -> tuple[FunctionUrn, PreparedCall[InvocationResult]]:
        """
        Everything of :meth:`ainvoke` that comes before sending: read the connection, check the
        invocation and build its request, choose the read timeout (from the function's config unless
        set), fetch an IAM token when the connection uses them. :meth:`asend` then sends the call.

        Lets a caller record "about to send" as late as possible (see the invoke trigger's claim).

        :raises InvalidRequestError: bad input, before any network call.
        """
        settings = await self.asettings()
        urn, call = self._prepare_invoke(invocation)  # no I/O once the connection is read
        if invocation.timeout is None and not settings.read_timeout_set:  # the config may be read
            known = _function_configs.known(settings.endpoint, urn)
            if known is UNREAD:
                known = await self.afunction_config(urn)
            call = replace(call, read_timeout=self._read_timeout_for(urn, known))
        if uses_fetched_tokens(settings):
            await to_thread(self._tokens.token)  # cached: the send below reuses it
        return urn, call

    async def asend(
        self, call: PreparedCall[T], *, before_retry: Callable[[], Awaitable[None]] | None = None
    ) -> T:
        """
        Send a call from :meth:`aprepare_invoke` (with the retry policy and the 401 refresh).

        :param before_retry: awaited before each attempt after the first one (the retry policy's).
        """
        return await self._acall(call, before_retry=before_retry)

    def attempt_seconds(self, call: PreparedCall[Any]) -> float:
        """The longest one attempt of ``call`` may take: connecting, then waiting for its answer."""
        connect, read = self.settings.timeouts
        return connect + (call.read_timeout if call.read_timeout is not None else read)

    async def afunction_config(self, function_urn: str | FunctionUrn) -> FunctionConfig | None:
        """The function's config; see :meth:`function_config`."""
        urn = await to_thread(self.resolve_urn, function_urn)
        return await self._aread_settings(
            _function_configs, urn, self._prepare_invoke_config, self._config_unreadable
        )

    async def aasync_invoke_config(self, function_urn: str | FunctionUrn) -> AsyncInvokeConfig | None:
        """The function's asynchronous invocation settings; see :meth:`async_invoke_config`."""
        urn = await to_thread(self.resolve_urn, function_urn)
        return await self._aread_settings(
            _async_invoke_configs,
            urn,
            self._prepare_async_invoke_config,
            self._async_settings_unreadable,
        )

    async def _aread_settings(
        self,
        cache: FunctionSettingsCache[T],
        urn: FunctionUrn,
        prepare: Callable[[FunctionUrn], PreparedCall[T]],
        unreadable: Callable[[FunctionUrn, FunctionGraphError], None],
    ) -> T | None:
        """The sync hook's ``_read_settings``, sent on the event loop."""
        settings = await self.asettings()  # the cache is keyed by endpoint: never read it on the loop
        known = cache.known(settings.endpoint, urn)
        if known is not UNREAD:
            return cast("T | None", known)
        try:
            value = await self._acall(await to_thread(prepare, urn))
        except AuthenticationError:
            raise
        except FunctionGraphError as err:
            unreadable(urn, err)
            value = None
        return cache.remember(settings.endpoint, urn, value)

    async def aget_async_invocation(
        self,
        function_urn: str | FunctionUrn,
        request_id: str,
        *,
        query_begin_time: str | None = None,
    ) -> AsyncInvocationStatus | None:
        """The status of an asynchronous invocation; see :meth:`get_async_invocation`."""
        marker: int | None = None
        for _ in range(MAX_STATUS_PAGES):
            call = await to_thread(
                functools.partial(
                    self._prepare_async_status,
                    function_urn,
                    request_id,
                    query_begin_time=query_begin_time,
                    marker=marker,
                )
            )
            page = await self._acall(call)
            if page.status is not None or page.next_marker is None:
                return page.status
            marker = page.next_marker
        return None

    async def acancel_async_invocation(
        self, function_urn: str | FunctionUrn, request_id: str, *, mode: str = "force"
    ) -> None:
        """Stop an asynchronous invocation; see :meth:`cancel_async_invocation`."""
        call = await to_thread(self._prepare_cancel, function_urn, request_id, mode)
        await self._acall(call)

    async def _acall(
        self, call: PreparedCall[T], *, before_retry: Callable[[], Awaitable[None]] | None = None
    ) -> T:
        """
        Authenticate, send and parse ``call`` with retries and the one-time token refresh on 401/403;
        the outcome of an invocation goes to the metrics, as in the sync hook.
        """
        function = call.invoked_function
        if function is None:
            return await self._asend_with_retries(call, before_retry)
        started = time.monotonic()
        try:
            result = await self._asend_with_retries(call, before_retry)
        except Exception as err:
            metrics.invocation_failed(function, time.monotonic() - started, err)
            raise
        if isinstance(result, InvocationResult):
            metrics.invocation_answered(function, time.monotonic() - started, result)
        return result

    async def _asend_with_retries(
        self, call: PreparedCall[T], before_retry: Callable[[], Awaitable[None]] | None
    ) -> T:
        """Authenticate, send and parse ``call`` with retries and the one-time token refresh on 401/403."""
        from tenacity import AsyncRetrying

        settings = await self.asettings()

        async def attempt() -> T:
            self._cool_downs.check()  # reads one small local file at most
            if settings.auth_type == "aksk":
                return call.parse(await self._asend_signed(call, settings))
            token = await to_thread(self._tokens.token)
            response = await self._aexchange(
                authenticate(call.request, settings, token=token), call.read_timeout
            )
            if is_token_rejected(response[0], response[2]):
                # Dropping the token takes the host cache file lock: not on the event loop.
                await to_thread(self._drop_rejected_token, response, token, call.what)
                token = await to_thread(self._tokens.token)
                response = await self._aexchange(
                    authenticate(call.request, settings, token=token), call.read_timeout
                )
                self._raise_if_rejected_again(response, call.what)
            return call.parse(response)

        try:
            try:
                return await attempt()
            except Exception as exc:
                delay = delay_after_first_attempt(
                    exc,
                    settings.retry,
                    idempotent=call.idempotent,
                    what=call.what,
                    logger=self._logger,
                    function=call.invoked_function,
                )
                if delay is None:
                    raise
            await asyncio.sleep(delay)
            retrying = AsyncRetrying(
                **retry_arguments(
                    settings.retry,
                    idempotent=call.idempotent,
                    what=call.what,
                    logger=self._logger,
                    attempts_done=1,
                    function=call.invoked_function,
                )
            )

            async def retried() -> T:
                if before_retry is not None:
                    await before_retry()
                return await attempt()

            return await retrying(retried)
        except TransportError as err:
            note_not_resent(err, idempotent=call.idempotent)
            raise
        except AuthenticationError:
            self._forget_connection()
            raise

    async def _asend_signed(self, call: PreparedCall[Any], settings: FunctionGraphSettings) -> Response:
        """
        Send a signed request; while the AK/SK is not yet accepted on the host, take the first-use
        turn around it, as the sync hook does: first among this event loop's calls (an asyncio lock,
        so waiting calls hold no worker thread), then among the host's processes (a file lock, taken
        in a worker thread).
        """
        cool_downs = self._cool_downs
        if cool_downs.needs_first_use_turn and cool_downs.identity is not None:
            async with _first_use_gate(cool_downs.identity):
                if cool_downs.needs_first_use_turn:  # not accepted by the call before this one
                    cool_downs.check()  # rejected by it: fail without sending
                    return await self._asend_first(call, settings)
        response = await self._aexchange(authenticate(call.request, settings), call.read_timeout)
        if response[0] == 401:
            await to_thread(self._raise_if_signature_rejected, response, call.what)
        return response

    async def _asend_first(self, call: PreparedCall[Any], settings: FunctionGraphSettings) -> Response:
        turn = self._cool_downs.first_use()
        await to_thread(turn.__enter__)
        try:
            response = await self._aexchange(authenticate(call.request, settings), call.read_timeout)
            await to_thread(self._raise_if_signature_rejected, response, call.what)
        except BaseException as exc:
            await to_thread(turn.__exit__, type(exc), exc, exc.__traceback__)
            raise
        await to_thread(turn.__exit__, None, None, None)
        return response

    async def _aexchange(self, request: HttpRequest, read_timeout: float | None) -> Response:
        """One HTTP exchange over httpx; transport failures become :class:`TransportError`."""
        import httpx

        settings = await self.asettings()
        client = self._async_client(settings)
        connect, read = settings.timeouts
        try:
            response = await client.request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.body or None,
                timeout=httpx.Timeout(read_timeout or read, connect=connect),
            )
        except httpx.HTTPError as err:
            raise _transport_error(err, request) from None
        return response.status_code, response.headers, response.content


_FIRST_USE_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _first_use_gate(identity: str) -> asyncio.Lock:
    """The running event loop's lock for the first use of ``identity`` (credentials, a connection)."""
    gates = _FIRST_USE_GATES.setdefault(asyncio.get_running_loop(), {})
    return gates.setdefault(identity, asyncio.Lock())


@functools.cache
def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """
    One TLS context per ``verify`` setting, shared by every client in the process.

    Building a context loads the CA bundle (about 0.1 s of CPU); a triggerer running hundreds of
    invocations would otherwise spend seconds on it and delay their connections.
    """
    import httpx

    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return httpx.create_ssl_context(verify=verify)


def _transport_error(err: Exception, request: HttpRequest) -> TransportError:
    import httpx

    target = f"{request.method} {request.url.split('?', 1)[0]}"
    if isinstance(err, httpx.ConnectTimeout | httpx.ConnectError | httpx.PoolTimeout):
        return TransportError(f"Could not connect for {target}: {err!r}", request_sent=False)
    if isinstance(err, httpx.ReadTimeout | httpx.WriteTimeout):
        return TransportError(f"No answer within the timeout for {target}: {err!r}", request_sent=True)
    if isinstance(err, httpx.TransportError):
        return TransportError(f"Connection broke during {target}: {err!r}", request_sent=None)
    return TransportError(f"HTTP failure during {target}: {err!r}", request_sent=None, retryable=False)
