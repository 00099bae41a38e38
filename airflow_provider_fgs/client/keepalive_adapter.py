"""The ``requests`` transport adapter of the sync hook, whose connections use TCP keepalive."""

from __future__ import annotations

from typing import Any, ClassVar

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection

from airflow_provider_fgs.client.keepalive import SocketOption, keepalive_socket_options


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
