"""Fixtures of the reliability tests: connections to the emulator with fast retries."""

from __future__ import annotations

import pytest

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from tests.connections import ConnFactory, connection_factory

# Retries stay on (the policy under test); only the waits are short.
FAST = {
    "retry_attempts": 3,
    "retry_min_wait": 0.05,
    "retry_max_wait": 0.2,
    "connect_timeout": 2,
    "read_timeout": 10,
}
Connect = ConnFactory


@pytest.fixture
def connect(emu: FunctionGraphEmulator, monkeypatch: pytest.MonkeyPatch) -> Connect:
    """
    ``connect(mode="aksk"|"password"|"token", login=..., password=..., on=emulator, **extras)``: a
    ``functiongraph`` connection to the session emulator, or to ``on``; returns its id.
    """
    return connection_factory(emu, monkeypatch, default_mode="aksk", prefix="fgs_reliability", defaults=FAST)
