"""Fixtures of the hook tests: the emulator, connections pointing at it, a clean token cache."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_fgs.auth import TOKEN_CACHE

DEMO_USER = ("demo-domain", "demo-user", "demo-password")
DEMO_KEY = ("DEMOACCESSKEY", "demo-secret-key")
FAST_RETRIES = {"retry_attempts": 3, "retry_min_wait": 0.01, "retry_max_wait": 0.05}
ConnFactory = Callable[..., str]


@pytest.fixture
def emu(emulator: Any) -> Iterator[Any]:
    """
    The session emulator (tests/conftest.py) with no faults, zeroed counters and an empty token cache;
    the token TTL is restored after the test.
    """
    emulator.clear_faults()
    emulator.reset_stats()
    TOKEN_CACHE.clear()
    yield emulator
    emulator.clear_faults()
    emulator.set_token_ttl(86400.0)
    TOKEN_CACHE.clear()


@pytest.fixture
def make_conn(emu: Any, monkeypatch: pytest.MonkeyPatch) -> ConnFactory:
    """
    Create a ``functiongraph`` connection (``AIRFLOW_CONN_<ID>``) to the emulator; returns its id.

    ``mode`` is ``password`` (default), ``aksk`` or ``token``; keyword arguments override extras
    (``None`` removes one); ``login``/``password`` override the credentials.
    """
    counter = iter(range(1_000_000))

    def factory(
        mode: str = "password", *, login: str | None = None, password: str | None = None, **extra: Any
    ) -> str:
        conn_id = f"fg_test_{next(counter)}"
        extras: dict[str, Any] = {
            "region": emu.region,
            "project_id": emu.project_id,
            "endpoint": emu.url,
            "iam_endpoint": emu.url,
            "connect_timeout": 2,
            "read_timeout": 30,
            **FAST_RETRIES,
        }
        if mode == "password":
            extras["domain_name"] = DEMO_USER[0]
            default_login, default_password = DEMO_USER[1], DEMO_USER[2]
        elif mode == "aksk":
            default_login, default_password = DEMO_KEY
        else:
            default_login, default_password = "", ""
            extras["auth_type"] = "token"
        for key, value in extra.items():
            if value is None:
                extras.pop(key, None)
            else:
                extras[key] = value
        conn = {
            "conn_type": "functiongraph",
            "login": default_login if login is None else login,
            "password": default_password if password is None else password,
            "extra": extras,
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return factory
