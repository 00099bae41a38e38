"""Fixtures of the hook tests: connections to the emulator with fast retries."""

from __future__ import annotations

from typing import Any

import pytest

from tests.connections import ConnFactory, connection_factory

FAST_RETRIES = {"retry_attempts": 3, "retry_min_wait": 0.01, "retry_max_wait": 0.05}


@pytest.fixture
def make_conn(emu: Any, monkeypatch: pytest.MonkeyPatch) -> ConnFactory:
    """Connections to the emulator (``password`` auth unless told), with fast retries and short timeouts."""
    return connection_factory(
        emu,
        monkeypatch,
        default_mode="password",
        prefix="fg_test",
        defaults={"connect_timeout": 2, "read_timeout": 30, **FAST_RETRIES},
    )
