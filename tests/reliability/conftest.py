"""Fixtures of the reliability tests: a clean session emulator and connections to it with fast retries."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_fgs.auth import TOKEN_CACHE
from airflow_provider_fgs.emulator import FunctionGraphEmulator

DEMO_USER = ("demo-domain", "demo-user", "demo-password")
DEMO_KEY = ("DEMOACCESSKEY", "demo-secret-key")
# Retries stay on (the policy under test); only the waits are short.
FAST = {
    "retry_attempts": 3,
    "retry_min_wait": 0.05,
    "retry_max_wait": 0.2,
    "connect_timeout": 2,
    "read_timeout": 10,
}
Connect = Callable[..., str]


@pytest.fixture
def emu(emulator: FunctionGraphEmulator) -> Iterator[FunctionGraphEmulator]:
    """The session emulator with no faults, zeroed counters and no cached token, before and after."""
    emulator.clear_faults()
    emulator.reset_stats()
    TOKEN_CACHE.clear()
    yield emulator
    emulator.clear_faults()
    TOKEN_CACHE.clear()


@pytest.fixture
def connect(emu: FunctionGraphEmulator, monkeypatch: pytest.MonkeyPatch) -> Connect:
    """
    ``connect(mode="aksk"|"password"|"token", login=..., password=..., on=emulator, **extras)``: a
    ``functiongraph`` connection (``AIRFLOW_CONN_<ID>``) to the session emulator, or to ``on``; returns
    its id. An extra set to ``None`` is removed.
    """
    counter = iter(range(1_000_000))

    def factory(
        mode: str = "aksk",
        *,
        login: str | None = None,
        password: str | None = None,
        on: FunctionGraphEmulator | None = None,
        **extra: Any,
    ) -> str:
        target = on or emu
        conn_id = f"fgs_reliability_{next(counter)}"
        extras: dict[str, Any] = {
            "region": target.region,
            "project_id": target.project_id,
            "endpoint": target.url,
            "iam_endpoint": target.url,
            **FAST,
        }
        if mode == "password":
            extras["domain_name"] = DEMO_USER[0]
            credentials = DEMO_USER[1:]
        elif mode == "aksk":
            credentials = DEMO_KEY
        else:
            extras["auth_type"] = "token"
            credentials = ("", "")
        for key, value in extra.items():
            if value is None:
                extras.pop(key, None)
            else:
                extras[key] = value
        connection = {
            "conn_type": "functiongraph",
            "login": credentials[0] if login is None else login,
            "password": credentials[1] if password is None else password,
            "extra": extras,
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        return conn_id

    return factory
