"""The ``supervisor`` fixture: installs the stand-in of :mod:`tests.triggers.supervisor` for a test."""

from __future__ import annotations

from typing import Any

import pytest

from tests.triggers.supervisor import InterleavingSupervisor


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.sdk.execution_time import task_runner

    def install(seed: int) -> InterleavingSupervisor:
        fake = InterleavingSupervisor(seed)
        monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", fake, raising=False)
        return fake

    return install
