"""TCP keepalive on the client's connections, so a long synchronous call survives idle-dropping middleboxes.

A synchronous invocation sends its request and then waits, silent, until the function answers (up to
the 90 s gateway cut). NAT gateways, load balancers and firewalls drop connections that carry no
packets for a while; the answer is then lost and the client ends in a read timeout although the
function finished (apache/airflow#41498, #34781, #34653 for the Lambda operator). Keepalive probes
every few seconds keep such a connection alive in every middlebox on the path.

The socket options serve both transports (:mod:`~airflow_provider_fgs.client.sync_transport` and
:mod:`~airflow_provider_fgs.client.async_transport`).
"""

from __future__ import annotations

import socket

KEEPALIVE_IDLE_S = 30
"""Seconds of silence on a connection before the first keepalive probe."""
KEEPALIVE_INTERVAL_S = 10
"""Seconds between two keepalive probes."""
KEEPALIVE_PROBES = 6
"""Unanswered probes after which the kernel declares the connection dead."""

SocketOption = tuple[int, int, int]


def keepalive_socket_options() -> list[SocketOption]:
    """``setsockopt`` triples turning keepalive on, with the idle time and interval this platform accepts."""
    options: list[SocketOption] = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)  # Linux, macOS
    if idle is not None:
        options.append((socket.IPPROTO_TCP, idle, KEEPALIVE_IDLE_S))
    if hasattr(socket, "TCP_KEEPINTVL"):
        options.append((socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S))
    if hasattr(socket, "TCP_KEEPCNT"):
        options.append((socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES))
    return options
