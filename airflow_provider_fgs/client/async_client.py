"""AsyncFunctionGraphClient: the client's calls on the event loop (triggers, batches), over ``aiohttp``."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from airflow_provider_fgs.client.calls import PreparedCall, as_invocation, function_config_call
from airflow_provider_fgs.client.credentials import uses_fetched_tokens
from airflow_provider_fgs.client.flow import BeforeRetry, Blocking, Exchange, Flow, Sleep, Step, adrive
from airflow_provider_fgs.client.settings import FunctionGraphSettings
from airflow_provider_fgs.client.sync_client import FunctionGraphClient
from airflow_provider_fgs.client.tokens import TokenCache
from airflow_provider_fgs.compat import to_thread
from airflow_provider_fgs.protocol.async_invoke import AsyncInvocationStatus
from airflow_provider_fgs.protocol.async_invoke_config import AsyncInvokeConfig
from airflow_provider_fgs.protocol.functions import FunctionConfig
from airflow_provider_fgs.protocol.http import HttpRequest, Response
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.protocol.invoke import InvocationResult
from airflow_provider_fgs.protocol.urn import FunctionUrn

if TYPE_CHECKING:
    import aiohttp

T = TypeVar("T")
BeforeRetryHook = Callable[[BaseException | None], Awaitable[None]]
"""Awaited before an attempt after the first, with the error that ended the attempt before it."""


class AsyncFunctionGraphClient(FunctionGraphClient):
    """
    The asynchronous twin of :class:`~airflow_provider_fgs.client.sync_client.FunctionGraphClient`.

    Its calls are the same flows, driven on the event loop: the exchange over one ``aiohttp`` session
    (one pool of keep-alive connections for all its calls), the waits with ``asyncio.sleep``, and what may
    block (a token fetch, about once a day; a host cache file lock) in a worker thread. So the same
    requests, retry policy, token refresh and cool-downs apply.

    Use it as an async context manager so the session is closed, also on cancellation.

    :param settings: the connection's settings (see the sync client).
    :param token_cache: the token cache; the process-wide one by default.
    """

    def __init__(
        self, settings: FunctionGraphSettings | None = None, *, token_cache: TokenCache | None = None
    ) -> None:
        super().__init__(settings, token_cache=token_cache)
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the ``aiohttp`` session and its pooled connections (and the sync session, if any)."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()
        self.close()

    async def asettings(self) -> FunctionGraphSettings:
        """The connection's settings, read without blocking the event loop."""
        return self.settings

    # -- calls ---------------------------------------------------------------------------------------

    async def ainvoke(
        self, function_urn: str | FunctionUrn | Invocation | None = None, payload: Any = None, **options: Any
    ) -> InvocationResult:
        """
        Invoke a function synchronously without blocking the event loop: the same arguments as
        :meth:`~airflow_provider_fgs.client.sync_client.FunctionGraphClient.invoke`.
        """
        return await self._arun(partial(self._invoke, as_invocation(function_urn, payload, **options)))

    async def aprepare_invoke(
        self, invocation: Invocation
    ) -> tuple[FunctionUrn, PreparedCall[InvocationResult]]:
        """
        Everything of :meth:`ainvoke` that comes before sending (the connection read, the check, the
        request, the read timeout from the function's config, an IAM token): :meth:`asend` then sends it.

        Lets a caller record "about to send" as late as possible (see the invoke trigger's claim).

        :raises InvalidRequestError: bad input, before any network call.
        """
        prepared = await self._arun(partial(self._prepared_invoke, invocation))
        if uses_fetched_tokens(self.settings):
            await self._arun(self._sender.token)  # cached: sending reuses it
        return prepared

    async def aresolve_urn(self, function_urn: str | FunctionUrn | None = None, **parts: Any) -> FunctionUrn:
        """:meth:`resolve_urn` without blocking the event loop (a project name needs the IAM token)."""
        return await self._arun(partial(self._resolved, function_urn, **parts))

    async def asend(self, call: PreparedCall[T], *, before_retry: BeforeRetryHook | None = None) -> T:
        """
        Send a call from :meth:`aprepare_invoke` (with the retry policy and the one-time token refresh).

        :param before_retry: awaited before each attempt after the first one (the retry policy's), with
            the error that ended the attempt before it.
        """
        return await self._arun(lambda: self._sender.send(call), before_retry=before_retry)

    def attempt_seconds(self, call: PreparedCall[Any]) -> float:
        """The longest one attempt of ``call`` may take: connecting, then waiting for its answer."""
        connect, read = self.settings.timeouts
        return connect + (call.read_timeout if call.read_timeout is not None else read)

    async def afunction_config(self, function_urn: str | FunctionUrn) -> FunctionConfig | None:
        """The function's config, cached; see :meth:`function_config`."""
        return await self._arun(partial(self._for_function, function_urn, self._invoke_config))

    async def aasync_invoke_config(self, function_urn: str | FunctionUrn) -> AsyncInvokeConfig | None:
        """The function's asynchronous invocation settings, cached; see :meth:`async_invoke_config`."""
        return await self._arun(partial(self._for_function, function_urn, self._async_settings))

    async def aget_function_config(self, function_urn: str | FunctionUrn) -> FunctionConfig:
        """The function's whole configuration, read afresh; see :meth:`get_function_config`."""

        def read(urn: FunctionUrn) -> Flow[FunctionConfig]:
            return self._sender.send(function_config_call(self.settings, urn))

        return await self._arun(partial(self._for_function, function_urn, read))

    async def aget_async_invocation(
        self, function_urn: str | FunctionUrn, request_id: str, *, query_begin_time: str | None = None
    ) -> AsyncInvocationStatus | None:
        """The status of an asynchronous invocation; see :meth:`get_async_invocation`."""
        return await self._arun(partial(self._async_status, function_urn, request_id, query_begin_time))

    async def acancel_async_invocation(
        self, function_urn: str | FunctionUrn, request_id: str, *, mode: str = "force"
    ) -> None:
        """Stop an asynchronous invocation; see :meth:`cancel_async_invocation`."""
        await self._arun(partial(self._cancel, function_urn, request_id, mode))

    # -- sending, on the event loop ------------------------------------------------------------------

    async def _arun(
        self, flow_of: Callable[[], Flow[T]], *, before_retry: BeforeRetryHook | None = None
    ) -> T:
        """Drive the flow that ``flow_of`` makes on the event loop, once the settings are read."""
        await self.asettings()
        return await adrive(flow_of(), partial(self._aperform, before_retry=before_retry))

    async def _aperform(self, step: Step, *, before_retry: BeforeRetryHook | None) -> Any:
        if isinstance(step, Exchange):
            if step.first_use is None or step.settle is None:
                return await self._aexchange(step.request, step.read_timeout, step.connect_timeout)
            return await self._afirst_use_exchange(step)
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Blocking):
            return await to_thread(step.work)
        elif isinstance(step, BeforeRetry) and before_retry is not None:
            await before_retry(step.error)
        return None

    async def _afirst_use_exchange(self, step: Exchange) -> Response:
        """
        A signed exchange under the credentials' first-use turn: first among this event loop's calls (an
        asyncio lock, so waiting calls hold no worker thread), then among the host's processes (a file
        lock, taken in a worker thread).
        """
        cool_downs, settle = step.first_use, step.settle
        assert cool_downs is not None
        assert settle is not None
        assert cool_downs.identity is not None
        async with first_use_gate(cool_downs.identity):
            if cool_downs.needs_first_use_turn:  # not accepted by the call before this one
                cool_downs.check()  # rejected by it: fail without sending
                turn = cool_downs.first_use()
                await to_thread(turn.__enter__)
                try:
                    response = await self._aexchange(step.request, step.read_timeout)
                    await to_thread(settle, response)
                except BaseException as exc:
                    await to_thread(turn.__exit__, type(exc), exc, exc.__traceback__)
                    raise
                await to_thread(turn.__exit__, None, None, None)
                return response
        response = await self._aexchange(step.request, step.read_timeout)
        if response[0] == 401:
            await to_thread(settle, response)
        return response

    async def _aexchange(
        self, request: HttpRequest, read_timeout: float | None, connect_timeout: float | None = None
    ) -> Response:
        from airflow_provider_fgs.client.async_transport import aexchange, new_session

        if self._http is None:
            self._http = new_session(self.settings)
        return await aexchange(self._http, self.settings, request, read_timeout, connect_timeout)


_FIRST_USE_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def first_use_gate(identity: str) -> asyncio.Lock:
    """The running event loop's lock for the first use of ``identity`` (credentials, a connection)."""
    gates = _FIRST_USE_GATES.setdefault(asyncio.get_running_loop(), {})
    return gates.setdefault(identity, asyncio.Lock())
