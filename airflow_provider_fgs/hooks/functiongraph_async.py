"""FunctionGraphAsyncHook: the hook's calls over ``httpx.AsyncClient``, for triggers in the triggerer."""

from __future__ import annotations

import asyncio
import functools
import ssl
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from airflow_provider_fgs.auth import Response, authenticate
from airflow_provider_fgs.connection import FunctionGraphSettings
from airflow_provider_fgs.hooks.functiongraph import _UNKNOWN, USER_AGENT, FunctionGraphHook, PreparedCall
from airflow_provider_fgs.keepalive import keepalive_socket_options
from airflow_provider_fgs.protocol.async_invoke import (
    AsyncInvocationStatus,
)
from airflow_provider_fgs.protocol.errors import AuthenticationError, FunctionGraphError
from airflow_provider_fgs.protocol.function_config import FunctionConfig
from airflow_provider_fgs.protocol.http import HttpRequest
from airflow_provider_fgs.protocol.invoke import InvocationResult
from airflow_provider_fgs.protocol.urn import FunctionUrn
from airflow_provider_fgs.retry import TransportError, delay_after_first_attempt, retry_arguments

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")


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
        """The parsed connection, read in a worker thread (Airflow's connection API is sync)."""
        return await asyncio.to_thread(lambda: self.settings)

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
        """Invoke a function synchronously without blocking the event loop; see :meth:`invoke`."""
        call = await asyncio.to_thread(
            self._prepare_invoke,
            function_urn,
            payload,
            log_type=log_type,
            request_version=request_version,
            instance_memory=instance_memory,
            timeout=timeout,
            deserialize=deserialize,
        )
        settings = await self.asettings()
        if timeout is None and not settings.read_timeout_set:  # input is valid: the config may be read
            urn = await asyncio.to_thread(self.resolve_urn, function_urn)
            known = self._cached_function_config(urn)
            if known is _UNKNOWN:
                known = await self.afunction_config(urn)
            call = replace(call, read_timeout=self._read_timeout_for(urn, known))
        return await self._acall(call)

    async def afunction_config(self, function_urn: str | FunctionUrn) -> FunctionConfig | None:
        """The function's config; see :meth:`function_config`."""
        urn = await asyncio.to_thread(self.resolve_urn, function_urn)
        known = self._cached_function_config(urn)
        if known is not _UNKNOWN:
            return cast("FunctionConfig | None", known)
        try:
            value = await self._acall(await asyncio.to_thread(self._prepare_function_config, urn))
        except AuthenticationError:
            raise
        except FunctionGraphError as err:
            self._config_unreadable(urn, err)
            value = None
        return self._remember_function_config(urn, value)

    async def aget_async_invocation(
        self, function_urn: str | FunctionUrn, request_id: str
    ) -> AsyncInvocationStatus | None:
        """The status of an asynchronous invocation; see :meth:`get_async_invocation`."""
        call = await asyncio.to_thread(self._prepare_async_status, function_urn, request_id)
        return await self._acall(call)

    async def acancel_async_invocation(
        self, function_urn: str | FunctionUrn, request_id: str, *, mode: str = "force"
    ) -> None:
        """Stop an asynchronous invocation; see :meth:`cancel_async_invocation`."""
        call = await asyncio.to_thread(self._prepare_cancel, function_urn, request_id, mode)
        await self._acall(call)

    async def _acall(self, call: PreparedCall[T]) -> T:
        """Authenticate, send and parse ``call`` with retries and the one-time token refresh on 401."""
        from tenacity import AsyncRetrying

        settings = await self.asettings()

        async def attempt() -> T:
            if settings.auth_type == "aksk":
                return call.parse(
                    await self._aexchange(authenticate(call.request, settings), call.read_timeout)
                )
            token = await asyncio.to_thread(self._tokens.token)
            response = await self._aexchange(
                authenticate(call.request, settings, token=token), call.read_timeout
            )
            if response[0] == 401:
                self._drop_rejected_token(response, token, call.what)
                token = await asyncio.to_thread(self._tokens.token)
                response = await self._aexchange(
                    authenticate(call.request, settings, token=token), call.read_timeout
                )
                self._raise_if_rejected_again(response, call.what)
            return call.parse(response)

        try:
            return await attempt()
        except Exception as exc:
            delay = delay_after_first_attempt(
                exc, settings.retry, idempotent=call.idempotent, what=call.what, logger=self._logger
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
            )
        )
        return await retrying(attempt)

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
