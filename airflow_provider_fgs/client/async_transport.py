"""The event loop's transport: an ``aiohttp`` session per client, one exchange, and its failures typed.

One ``ClientSession`` holds a pool of keep-alive connections that many calls share: at 100 calls in
flight it costs about a millisecond of CPU per call, where one shared ``httpx.AsyncClient`` pool costs
5 to 20 times that (bench/bench_batch_client.py measures both beside each other).
"""

from __future__ import annotations

import functools
import socket
import ssl
from typing import Any

import aiohttp

from airflow_provider_fgs.client.keepalive import keepalive_socket_options
from airflow_provider_fgs.client.retry import TransportError
from airflow_provider_fgs.client.settings import USER_AGENT, FunctionGraphSettings
from airflow_provider_fgs.protocol.http import HttpRequest, Response

POOL_LIMIT = 0
"""Connections per session: unbounded; a batch bounds its calls in flight itself."""


def new_session(settings: FunctionGraphSettings) -> aiohttp.ClientSession:
    """A session with keepalive connections, the connection's TLS verification, proxy and timeouts."""
    connector = aiohttp.TCPConnector(
        limit=POOL_LIMIT,
        ssl=_ssl_context(settings.verify),
        socket_factory=_keepalive_socket,
    )
    connect, read = settings.timeouts
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read),
        headers={"User-Agent": USER_AGENT},
        auto_decompress=True,
        trust_env=not settings.proxies,  # HTTPS_PROXY and NO_PROXY, unless the connection names a proxy
    )


async def aexchange(
    session: aiohttp.ClientSession,
    settings: FunctionGraphSettings,
    request: HttpRequest,
    read_timeout: float | None,
    connect_timeout: float | None = None,
) -> Response:
    """One HTTP exchange; transport failures become :class:`TransportError`."""
    connect, read = settings.timeouts
    connect = connect_timeout or connect
    try:
        async with session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body or None,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read_timeout or read),
            proxy=settings.proxies.get("https") or settings.proxies.get("http"),
            allow_redirects=False,
        ) as response:
            body = await response.read()
            return response.status, response.headers, body
    except (aiohttp.ClientError, TimeoutError) as err:
        raise _transport_error(err, request) from None


def _keepalive_socket(addr_info: Any) -> socket.socket:
    """A socket for the connector, with TCP keepalive probes (idle-dropping NATs keep a long call)."""
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=kind, proto=proto)
    for level, option, value in keepalive_socket_options():
        sock.setsockopt(level, option, value)
    return sock


@functools.cache
def _ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    """
    One TLS context per ``verify`` setting, shared by every session in the process (building one loads
    the CA bundle: about 0.1 s of CPU); ``False`` turns verification off.
    """
    if verify is False:
        return False
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return ssl.create_default_context()


def _transport_error(err: BaseException, request: HttpRequest) -> TransportError:
    target = f"{request.method} {request.url.split('?', 1)[0]}"
    if isinstance(err, aiohttp.ClientSSLError):
        return TransportError(f"TLS failure talking to {target}: {err}", request_sent=False, retryable=False)
    if isinstance(err, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return TransportError(f"Could not connect for {target}: {err!r}", request_sent=False)
    if isinstance(err, TimeoutError):  # SocketTimeoutError: no answer within the read timeout
        return TransportError(f"No answer within the timeout for {target}: {err!r}", request_sent=True)
    if isinstance(err, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return TransportError(f"Connection broke during {target}: {err!r}", request_sent=None)
    return TransportError(f"HTTP failure during {target}: {err!r}", request_sent=None, retryable=False)
