"""
Nothing leaves loopback: a guard on the process's sockets that refuses to resolve or connect to any other
address (the ECS metadata address 169.254.169.254 included), and remembers each attempt.

The test session installs it (``tests/conftest.py``, which fails the test that tried, even when the code
under test swallowed the error, as a credential chain passing over a source does), and so does every
process of a test deployment, through ``tests/loopback_site/sitecustomize.py`` on their ``PYTHONPATH``
(the deployment fails when one of its components tried). Unix sockets are local and always allowed.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RECORD_ENV = "FGS_LOOPBACK_GUARD_RECORD"
"""Where a deployment's processes append the attempts they made (one line each)."""
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", ""})

_attempts: list[str] = []
_lock = threading.Lock()
_record: Path | None = None


_own_addresses: frozenset[str] = frozenset()


def _machine_addresses(getaddrinfo: Any) -> frozenset[str]:
    """This machine's own addresses (its name may resolve to its interface, e.g. for Airflow's log server)."""
    try:
        return frozenset(str(info[4][0]) for info in getaddrinfo(socket.gethostname(), None))
    except OSError:
        return frozenset()


def is_loopback(host: object) -> bool:
    """Whether ``host`` (a name or an address) stays on this machine."""
    if host is None:
        return True  # getaddrinfo(None, port): the wildcard of a listening socket
    name = host.decode() if isinstance(host, bytes) else str(host)
    name = name.strip("[]").split("%", 1)[0].lower()
    if name in LOCAL_NAMES or name == socket.gethostname().lower() or name in _own_addresses:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False  # any other name would be looked up in the DNS
    return address.is_loopback or address.is_unspecified


def attempts() -> list[str]:
    """The attempts refused so far in this process."""
    with _lock:
        return list(_attempts)


@contextlib.contextmanager
def expected_refusals() -> Iterator[list[str]]:
    """For the guard's own tests: the refusals made inside, which do not fail the test."""
    with _lock:
        before = len(_attempts)
    refused: list[str] = []
    yield refused
    with _lock:
        refused.extend(_attempts[before:])
        del _attempts[before:]


def _refuse(what: str) -> OSError:
    message = (
        f"loopback guard: refused {what} (tests never leave loopback; point the endpoint at the emulator)"
    )
    with _lock:
        _attempts.append(message)
    if _record is not None:
        with _record.open("a", encoding="utf-8") as out:
            out.write(f"pid {os.getpid()}: {message}\n")
    return OSError(errno.ENETUNREACH, message)


def install(record: Path | None = None) -> None:
    """Guard this process's sockets (once); ``record`` also receives each refused attempt."""
    global _record, _own_addresses
    _record = record
    if getattr(socket.socket, "_fgs_loopback_guard", False):
        return
    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
    _own_addresses = _machine_addresses(getaddrinfo)

    def checked(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
            raise _refuse(f"a connection to {address[0]}:{address[1]}")

    def guarded_connect(self: socket.socket, address: Any) -> None:
        checked(self, address)
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        checked(self, address)
        return connect_ex(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, str(_refuse(f"looking up {host}")))
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo
    socket.socket._fgs_loopback_guard = True  # type: ignore[attr-defined]
