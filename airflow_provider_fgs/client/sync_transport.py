"""The ``requests`` transport of the sync client: its session, one exchange, and its failures typed.

Importing this module imports ``requests``: the client imports it when it first sends, so a DAG file
that imports an operator does not (about 0.17 s less for every parse of it).
"""

from __future__ import annotations

from typing import Any, ClassVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from airflow_provider_fgs.client.keepalive import SocketOption, keepalive_socket_options
from airflow_provider_fgs.client.retry import TransportError
from airflow_provider_fgs.client.settings import USER_AGENT, FunctionGraphSettings
from airflow_provider_fgs.protocol.http import HttpRequest, Response


class KeepaliveAdapter(HTTPAdapter):
    """A ``requests`` transport adapter whose connections (direct and through a proxy) use keepalive."""

    socket_options: ClassVar[list[SocketOption]] = [
        *HTTPConnection.default_socket_options,
        *keepalive_socket_options(),
    ]

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("socket_options", self.socket_options)
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs.setdefault("socket_options", self.socket_options)
        return super().proxy_manager_for(proxy, **proxy_kwargs)


def new_session(settings: FunctionGraphSettings) -> requests.Session:
    """A session with keepalive connections, the connection's TLS verification and proxies."""
    session = requests.Session()
    session.mount("https://", KeepaliveAdapter())
    session.mount("http://", KeepaliveAdapter())
    session.verify = settings.verify
    session.proxies.update(settings.proxies)
    session.headers["User-Agent"] = USER_AGENT
    return session


def exchange(
    session: requests.Session,
    settings: FunctionGraphSettings,
    request: HttpRequest,
    read_timeout: float | None,
    connect_timeout: float | None = None,
) -> Response:
    """One HTTP exchange; transport failures become :class:`TransportError`."""
    timeout = (connect_timeout or settings.connect_timeout, read_timeout or settings.read_timeout)
    try:
        response = session.request(
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
