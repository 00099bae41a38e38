"""
One IAM token per host, and a rejected credential stops its fan-out: many real processes at once
(forked, as Airflow's task runners are separate processes) against the emulator over real sockets.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fgs.client.tokens import TOKEN_CACHE
from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.emulator.lockout import LockoutRules
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.protocol.errors import AuthenticationError, CredentialCoolDownError
from tests.conftest import FUNCTION_DIRS, HOST_CACHE_DIR
from tests.connections import DEMO_KEY, DEMO_USER, ConnFactory

Outcome = tuple[str, str]
WRONG_SK = "wrong-secret-key-value"
WRONG_PASSWORD = "wrong-password-value"


def _invoke(conn_id: str, attempts: int = 1) -> list[Outcome]:
    """What a task does: invoke ``hello``; ``attempts`` > 1 plays Airflow's retries of a failed task."""
    outcomes: list[Outcome] = []
    for _ in range(attempts):
        TOKEN_CACHE.clear()  # each Airflow try is a new process with an empty in-process cache
        try:
            FunctionGraphHook(conn_id).invoke("hello", {"name": "host"})
            outcomes.append(("ok", ""))
            break
        except Exception as err:
            outcomes.append((type(err).__name__, str(err)))
    return outcomes


def _child(
    barrier: Any, results: Any, fn: Callable[..., list[Outcome]], args: tuple[Any, ...]
) -> None:  # pragma: no cover - runs in the forked process
    barrier.wait(30)
    results.put(fn(*args))


def in_processes(count: int, fn: Callable[..., list[Outcome]], *args: Any) -> list[Outcome]:
    """Run ``fn(*args)`` in ``count`` forked processes released at the same moment; their outcomes."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(count)
    results = context.Queue()
    processes = [context.Process(target=_child, args=(barrier, results, fn, args)) for _ in range(count)]
    for process in processes:
        process.start()
    outcomes: list[Outcome] = []
    try:
        for _ in processes:
            outcomes.extend(results.get(timeout=60))
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    assert all(process.exitcode == 0 for process in processes)
    return outcomes


@pytest.fixture
def locking_emulator(emu: Any) -> Iterator[FunctionGraphEmulator]:
    """A private emulator with the platform's lockout rules (short locks, so a failure is visible)."""
    with FunctionGraphEmulator(
        FUNCTION_DIRS,
        prestart_workers=1,
        lockout=LockoutRules(aksk_lock_seconds=60, iam_lock_seconds=60),
    ) as emulator:
        yield emulator


# -- one token per host ----------------------------------------------------------------------------


def test_processes_racing_for_a_token_make_one_token_request(emu: Any, make_conn: ConnFactory) -> None:
    conn_id = make_conn("password")
    outcomes = in_processes(12, _invoke, conn_id)
    assert outcomes == [("ok", "")] * 12
    assert emu.request_count("token") == 1
    assert emu.invocation_count("hello") == 12


def test_later_processes_reuse_the_token_and_a_401_replaces_it_for_everyone(
    emu: Any, make_conn: ConnFactory
) -> None:
    conn_id = make_conn("password")
    assert in_processes(1, _invoke, conn_id) == [("ok", "")]
    assert in_processes(3, _invoke, conn_id) == [("ok", "")] * 3
    assert emu.request_count("token") == 1
    emu.revoke_tokens()  # IAM no longer accepts the shared token
    assert in_processes(1, _invoke, conn_id) == [("ok", "")]
    assert emu.request_count("token") == 2  # the one process that saw the 401 fetched a new one
    assert in_processes(3, _invoke, conn_id) == [("ok", "")] * 3
    assert emu.request_count("token") == 2  # and the others use it: the rejected one is gone for all


def test_a_shared_token_due_for_refresh_is_not_used(emu: Any, make_conn: ConnFactory) -> None:
    # Refreshed a quarter of the lifetime before expiry: 6 s for both processes to start and use the
    # first token (a loaded CI machine takes over a second to start one), then it is due. The token
    # that replaces it lives long, so a slow second round cannot see it expire (a third fetch).
    emu.set_token_ttl(8.0)
    conn_id = make_conn("password")
    assert in_processes(2, _invoke, conn_id) == [("ok", "")] * 2
    assert emu.request_count("token") == 1
    emu.set_token_ttl(3600.0)
    time.sleep(6.5)
    assert in_processes(2, _invoke, conn_id) == [("ok", "")] * 2
    assert emu.request_count("token") == 2


def test_turned_off_each_process_fetches_its_own_token(emu: Any, make_conn: ConnFactory) -> None:
    conn_id = make_conn("password", host_cache=False)
    assert in_processes(4, _invoke, conn_id) == [("ok", "")] * 4
    assert emu.request_count("token") == 4


def test_no_secret_in_the_log_or_in_the_cache_directory(
    emu: Any, make_conn: ConnFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = FunctionGraphHook(make_conn("password"))
    hook.invoke("hello")
    token = hook._tokens.token()
    TOKEN_CACHE.clear()
    FunctionGraphHook(make_conn("password", password=WRONG_PASSWORD)).test_connection()
    for secret in (DEMO_USER[2], WRONG_PASSWORD, token):
        assert secret not in caplog.text
    files = [path for path in Path(HOST_CACHE_DIR).iterdir()]
    assert files
    for path in files:
        for secret in (DEMO_USER[2], WRONG_PASSWORD):
            assert secret.encode() not in path.read_bytes()
            assert secret not in path.name


# -- a rejected credential stops its fan-out ------------------------------------------------------


def test_a_wrong_secret_key_fanned_out_with_retries_is_rejected_once(
    locking_emulator: FunctionGraphEmulator, make_conn: ConnFactory
) -> None:
    conn_id = make_conn("aksk", password=WRONG_SK, on=locking_emulator)
    outcomes = in_processes(10, _invoke, conn_id, 4)  # fan-out of 10, retries=3
    assert locking_emulator.rejection_count("signature") == 1
    assert locking_emulator.rejection_count() == 1
    assert locking_emulator.locks_triggered == 0
    kinds = sorted(kind for kind, _ in outcomes)
    assert kinds == ["AuthenticationError"] + ["CredentialCoolDownError"] * 39
    message = next(message for kind, message in outcomes if kind == "CredentialCoolDownError")
    assert f"access key {DEMO_KEY[0]}" in message
    assert "were rejected at" in message
    assert "until" in message
    assert "verify aksk signature fail" in message  # why
    assert WRONG_SK not in message
    # the correct key is a different identity: used at once, and the gateway never locked the AK
    assert in_processes(2, _invoke, make_conn("aksk", on=locking_emulator)) == [("ok", "")] * 2


def test_a_wrong_password_fanned_out_with_retries_is_rejected_once(
    locking_emulator: FunctionGraphEmulator, make_conn: ConnFactory
) -> None:
    conn_id = make_conn("password", password=WRONG_PASSWORD, on=locking_emulator)
    outcomes = in_processes(10, _invoke, conn_id, 4)
    assert locking_emulator.rejection_count("password") == 1
    assert locking_emulator.request_count("token") == 1
    assert locking_emulator.locks_triggered == 0
    kinds = sorted(kind for kind, _ in outcomes)
    assert kinds == ["AuthenticationError"] + ["CredentialCoolDownError"] * 39
    assert in_processes(2, _invoke, make_conn("password", on=locking_emulator)) == [("ok", "")] * 2


def test_the_cool_down_ends_after_the_connections_setting(
    locking_emulator: FunctionGraphEmulator, make_conn: ConnFactory
) -> None:
    conn_id = make_conn("aksk", password=WRONG_SK, on=locking_emulator, credential_cooldown=1)
    hook = FunctionGraphHook(conn_id)
    with pytest.raises(AuthenticationError) as first:
        hook.invoke("hello")
    assert not isinstance(first.value, CredentialCoolDownError)
    with pytest.raises(CredentialCoolDownError, match="credential_cooldown"):
        hook.invoke("hello")
    assert locking_emulator.rejection_count("signature") == 1
    time.sleep(1.1)
    with pytest.raises(AuthenticationError) as later:
        hook.invoke("hello")
    assert not isinstance(later.value, CredentialCoolDownError)
    assert locking_emulator.rejection_count("signature") == 2


def test_without_the_cool_down_the_emulator_locks_the_access_key(
    locking_emulator: FunctionGraphEmulator, make_conn: ConnFactory
) -> None:
    """The lockout rule the provider avoids is real: 5 failed signatures lock even the right key."""
    bad = FunctionGraphHook(make_conn("aksk", password=WRONG_SK, on=locking_emulator, credential_cooldown=0))
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            bad.invoke("hello")
    assert locking_emulator.locks_triggered == 1
    good = FunctionGraphHook(make_conn("aksk", on=locking_emulator, credential_cooldown=0))
    with pytest.raises(AuthenticationError, match="locked"):
        good.invoke("hello")


def test_without_the_cool_down_iam_locks_the_user(
    locking_emulator: FunctionGraphEmulator, make_conn: ConnFactory
) -> None:
    bad = make_conn("password", password=WRONG_PASSWORD, on=locking_emulator, credential_cooldown=0)
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            FunctionGraphHook(bad).invoke("hello")
    assert locking_emulator.locks_triggered == 1
    good = FunctionGraphHook(make_conn("password", on=locking_emulator, credential_cooldown=0))
    with pytest.raises(AuthenticationError, match="locked"):
        good.invoke("hello")


def test_concurrent_deferrable_calls_with_a_wrong_secret_key_are_rejected_once(
    locking_emulator: FunctionGraphEmulator, make_conn: ConnFactory
) -> None:
    """The triggerer's async hook: many calls on one event loop, one rejected signature."""
    import asyncio

    from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook

    conn_id = make_conn("aksk", password=WRONG_SK, on=locking_emulator)

    async def fan_out() -> list[BaseException | object]:
        async with FunctionGraphAsyncHook(conn_id) as hook:
            calls = [hook.ainvoke(locking_emulator.urn("hello")) for _ in range(8)]
            return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = asyncio.run(fan_out())
    assert all(isinstance(outcome, AuthenticationError) for outcome in outcomes)
    assert sum(isinstance(outcome, CredentialCoolDownError) for outcome in outcomes) == 7
    assert locking_emulator.rejection_count("signature") == 1
    assert locking_emulator.locks_triggered == 0
