"""``functiongraph`` connections to an emulator, made from the environment (``AIRFLOW_CONN_<ID>``)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

DEMO_USER = ("demo-domain", "demo-user", "demo-password")
DEMO_KEY = ("DEMOACCESSKEY", "demo-secret-key")
ConnFactory = Callable[..., str]


def emulator_extra(emulator: Any, **more: Any) -> dict[str, Any]:
    """A connection's extras for ``emulator`` (region, project, service and IAM endpoints), and ``more``."""
    return {
        "region": emulator.region,
        "project_id": emulator.project_id,
        "endpoint": emulator.url,
        "iam_endpoint": emulator.url,
        **more,
    }


def connection_factory(
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    *,
    default_mode: str,
    prefix: str,
    defaults: Mapping[str, Any],
) -> ConnFactory:
    """
    ``factory(mode, login=..., password=..., on=emulator, **extras)`` makes a connection to ``emulator``
    (or to ``on``) and returns its id.

    ``mode`` is ``password``, ``aksk`` or ``token``; keyword arguments override the extras (``None``
    removes one) on top of ``defaults``; ``login``/``password`` override the demo credentials.
    """
    counter = itertools.count()

    def factory(
        mode: str = default_mode,
        *,
        login: str | None = None,
        password: str | None = None,
        on: Any = None,
        **extra: Any,
    ) -> str:
        target = on or emulator
        conn_id = f"{prefix}_{next(counter)}"
        extras = emulator_extra(target, **defaults)
        if mode == "password":
            extras["domain_name"] = DEMO_USER[0]
            credentials: tuple[str, str] = (DEMO_USER[1], DEMO_USER[2])
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
