"""Shared fixtures: the emulator serving example and test-only handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_fgs.emulator import FunctionGraphEmulator

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIRS = [ROOT / "example_dags" / "functions", ROOT / "tests" / "functions"]


@pytest.fixture(scope="session")
def emulator() -> Iterator[FunctionGraphEmulator]:
    """One emulator for the whole session; tests must not leave faults behind (use ``fresh_emulator``)."""
    with FunctionGraphEmulator(FUNCTION_DIRS) as emu:
        yield emu


@pytest.fixture
def fresh_emulator() -> Iterator[FunctionGraphEmulator]:
    """A private emulator for tests that change its state (faults, token lifetime, revocation, counters)."""
    with FunctionGraphEmulator(FUNCTION_DIRS, prestart_workers=1) as emu:
        yield emu


@pytest.fixture
def fgs_connection(emulator: FunctionGraphEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """``functiongraph_default`` as an AK/SK connection to the session's emulator, from the environment."""
    connection = {
        "conn_type": "functiongraph",
        "login": "DEMOACCESSKEY",
        "password": "demo-secret-key",
        "extra": {
            "region": emulator.region,
            "project_id": emulator.project_id,
            "endpoint": emulator.url,
            "iam_endpoint": emulator.url,
            # Short backoff keeps retry tests fast; the policy itself is unchanged.
            "retry_min_wait": 0.05,
            "retry_max_wait": 0.2,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_FUNCTIONGRAPH_DEFAULT", json.dumps(connection))
