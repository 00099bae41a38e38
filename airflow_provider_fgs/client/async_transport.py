"""The event loop's transport: an ``httpx.AsyncClient`` per client, one exchange, and its failures typed."""

from __future__ import annotations

import functools
import ssl

import httpx

from airflow_provider_fgs.client.keepalive import keepalive_socket_options
from airflow_provider_fgs.client.retry import TransportError
from airflow_provider_fgs.client.settings import USER_AGENT, FunctionGraphSettings
from airflow_provider_fgs.protocol.http import HttpRequest, Response


def new_async_client(settings: FunctionGraphSettings) -> httpx.AsyncClient:
    """A client with keepalive connections, the connection's TLS verification, proxy and timeouts."""
    connect, read = settings.timeouts
    transport = httpx.AsyncHTTPTransport(
        verify=_ssl_context(settings.verify),
        proxy=settings.proxies.get("https") or settings.proxies.get("http"),
        socket_options=keepalive_socket_options(),
    )
    # The proxy is the transport's: a client-level proxy would mount a transport without keepalive.
    return httpx.AsyncClient(
        transport=transport,
        verify=_ssl_context(settings.verify),  # for proxies from the environment
        timeout=httpx.Timeout(read, connect=connect),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    )


async def aexchange(
    client: httpx.AsyncClient,
    settings: FunctionGraphSettings,
    request: HttpRequest,
    read_timeout: float | None,
) -> Response:
    """One HTTP exchange over httpx; transport failures become :class:`TransportError`."""
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
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return httpx.create_ssl_context(verify=verify)


def _transport_error(err: Exception, request: HttpRequest) -> TransportError:
    target = f"{request.method} {request.url.split('?', 1)[0]}"
    if isinstance(err, httpx.ConnectTimeout | httpx.ConnectError | httpx.PoolTimeout):
        return TransportError(f"Could not connect for {target}: {err!r}", request_sent=False)
    if isinstance(err, httpx.ReadTimeout | httpx.WriteTimeout):
        return TransportError(f"No answer within the timeout for {target}: {err!r}", request_sent=True)
    if isinstance(err, httpx.TransportError):
        return TransportError(f"Connection broke during {target}: {err!r}", request_sent=None)
    return TransportError(f"HTTP failure during {target}: {err!r}", request_sent=None, retryable=False)
