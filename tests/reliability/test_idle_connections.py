"""
Long synchronous calls over idle connections: TCP keepalive on both transports, and a read timeout that
follows the function's own timeout (apache/airflow#41498, #34781, #34653 for the Lambda operator).

The emulator's ``stall`` fault runs the function, then keeps the connection open and silent before it
answers, as a long function looks to a NAT gateway that drops idle connections. While it is silent, the
test reads the kernel's table of TCP sockets (``/proc/net/tcp``): the client's socket must have its
keepalive timer armed (timer kind 2), which is what sends the probes that keep a NAT's entry alive.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_fgs.client.settings_cache import FUNCTION_CONFIGS
from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook
from airflow_provider_fgs.protocol.errors import InvalidRequestError
from airflow_provider_fgs.protocol.function_config import SYNC_READ_MARGIN_S, sync_read_timeout
from airflow_provider_fgs.protocol.invoke import SYNC_GATEWAY_TIMEOUT_S
from tests.reliability.conftest import FAST, Connect

STALL_S = 2.5
ECHO_TIMEOUT_S = 5  # tests/functions/echo.json
KEEPALIVE_TIMER = 2  # the "tr" column of /proc/net/tcp: 2 is the keepalive timer
ESTABLISHED = 1


@pytest.fixture(autouse=True)
def forget_function_timeouts() -> Iterator[None]:
    FUNCTION_CONFIGS.clear()
    yield
    FUNCTION_CONFIGS.clear()


def client_socket_timers(server_port: int) -> list[int]:
    """The timer kinds of the established IPv4 sockets connected to ``server_port`` (client ends)."""
    timers = []
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == server_port and int(fields[3], 16) == ESTABLISHED:
                timers.append(int(fields[5].split(":")[0], 16))
    return timers


def timers_during_stall(emu: FunctionGraphEmulator, call: Callable[[], Any]) -> tuple[Any, list[int]]:
    """Run ``call`` in a thread; from half-way through the stall, read the timers of its socket(s)."""
    port = urlsplit(emu.url).port
    assert port is not None
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=run)
    started = time.monotonic()
    thread.start()
    time.sleep(STALL_S / 2)
    # A loaded machine may take longer to connect: look until a connection is open (or the call ended).
    timers = client_socket_timers(port)
    while not timers and thread.is_alive():
        time.sleep(0.05)
        timers = client_socket_timers(port)
    thread.join(timeout=60)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    assert time.monotonic() - started >= STALL_S  # the answer really was held back
    return outcome["result"], timers


needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")


@needs_proc
def test_sync_call_completes_over_a_stalled_connection_with_keepalive_armed(
    fresh_emulator: FunctionGraphEmulator, connect: Connect
) -> None:
    emu = fresh_emulator  # its port carries this test's connections only
    conn_id = connect(read_timeout=None, on=emu)
    emu.inject_fault("stall", function="echo", route="invoke", delay=STALL_S)
    with FunctionGraphHook(conn_id) as hook:
        result, timers = timers_during_stall(emu, lambda: hook.invoke("echo", {"long": True}))

    assert not result.is_function_error
    assert result.result["event"] == {"long": True}
    assert timers, "no client connection to the emulator was open during the stall"
    assert set(timers) == {KEEPALIVE_TIMER}
    assert emu.invocation_count("echo") == 1


@needs_proc
def test_deferrable_transport_completes_over_a_stalled_connection_with_keepalive_armed(
    fresh_emulator: FunctionGraphEmulator, connect: Connect
) -> None:
    emu = fresh_emulator  # its port carries this test's connections only
    conn_id = connect(read_timeout=None, on=emu)
    emu.inject_fault("stall", function="echo", route="invoke", delay=STALL_S)

    async def invoke() -> Any:
        async with FunctionGraphAsyncHook(conn_id) as hook:
            return await hook.ainvoke("echo", {"long": True})

    result, timers = timers_during_stall(emu, lambda: asyncio.run(invoke()))

    assert result.result["event"] == {"long": True}
    assert timers, "no client connection to the emulator was open during the stall"
    assert set(timers) == {KEEPALIVE_TIMER}
    assert emu.invocation_count("echo") == 1


def test_read_timeout_follows_the_function_timeout_read_once(
    emu: FunctionGraphEmulator, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    conn_id = connect(read_timeout=None)
    caplog.set_level(logging.DEBUG)
    with FunctionGraphHook(conn_id) as first, FunctionGraphHook(conn_id) as second:
        first.invoke("echo", {})
        first.invoke("echo", {})
        second.invoke("echo", {})  # another hook of the same process: the cached value

    assert emu.request_count("config") == 1
    assert emu.invocation_count("echo") == 3
    expected = ECHO_TIMEOUT_S + SYNC_READ_MARGIN_S
    assert f"Waiting up to {expected:g} s for the answer of {emu.urn('echo')} (its timeout is 5 s)" in (
        caplog.text
    )


async def _ainvoke_twice(conn_id: str) -> None:
    async with FunctionGraphAsyncHook(conn_id) as hook:
        await hook.ainvoke("echo", {})
        await hook.ainvoke("echo", {})


def test_the_deferrable_transport_reads_the_config_once_too(
    emu: FunctionGraphEmulator, connect: Connect
) -> None:
    conn_id = connect(read_timeout=None)
    asyncio.run(_ainvoke_twice(conn_id))
    assert emu.request_count("config") == 1
    config = FUNCTION_CONFIGS.known(emu.url, emu.urn("echo"))
    assert config is not None
    assert config.timeout == ECHO_TIMEOUT_S


@pytest.mark.parametrize("where", ["connection", "call"])
def test_a_read_timeout_set_by_the_user_wins_and_needs_no_config(
    where: str, emu: FunctionGraphEmulator, connect: Connect
) -> None:
    conn_id = connect(read_timeout=30) if where == "connection" else connect(read_timeout=None)
    with FunctionGraphHook(conn_id) as hook:
        hook.invoke("echo", {}, timeout=30 if where == "call" else None)
    assert emu.request_count("config") == 0


def test_an_unreadable_config_falls_back_to_the_connection_timeout_with_a_warning(
    emu: FunctionGraphEmulator, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    conn_id = connect(read_timeout=None)
    emu.inject_fault("throttle", count=None, route="config")
    with FunctionGraphHook(conn_id) as hook:
        result = hook.invoke("echo", {"still": "invoked"})
        hook.invoke("echo", {})  # the failed read is remembered: no second round of config queries

    assert result.result["event"] == {"still": "invoked"}
    assert "Could not read the config of" in caplog.text
    assert "sync calls wait the connection's read timeout of 120 s" in caplog.text
    # One read (a first attempt and its retries) serves both calls.
    assert emu.request_count("config") == 1 + FAST["retry_attempts"]
    assert emu.invocation_count("echo") == 2


def test_the_gateway_cut_bounds_the_read_timeout() -> None:
    assert sync_read_timeout(3) == 3 + SYNC_READ_MARGIN_S
    assert sync_read_timeout(900) == SYNC_GATEWAY_TIMEOUT_S + SYNC_READ_MARGIN_S
    assert sync_read_timeout(259_200) == SYNC_GATEWAY_TIMEOUT_S + SYNC_READ_MARGIN_S


def test_bad_input_is_refused_before_the_config_is_read(emu: FunctionGraphEmulator, connect: Connect) -> None:
    conn_id = connect(read_timeout=None)
    with FunctionGraphHook(conn_id) as hook, pytest.raises(InvalidRequestError, match="not valid JSON"):
        hook.invoke("echo", "not json")

    async def ainvoke() -> None:
        async with FunctionGraphAsyncHook(conn_id) as hook:
            await hook.ainvoke("echo", "not json")

    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        asyncio.run(ainvoke())
    assert emu.request_count() == 0
