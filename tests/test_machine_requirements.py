"""
On a machine without Chromium, PostgreSQL or Redis the tests that need them skip with a one-line reason
each, before any deployment starts; under CI's switch (``FGS_REQUIRE_ALL_TESTS=1``) they fail instead.
A real pytest run in a subprocess, with the programs pointed at paths that do not exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.machine import REQUIRE_ALL_TESTS

ROOT = Path(__file__).resolve().parents[1]
# One browser test and one production-shaped test (the first of the parametrized deployment tests).
SELECTED = [
    "tests/integration/test_browser.py::test_add_connection_form_offers_functiongraph_fields",
    "tests/integration/test_production.py::test_the_deployment_runs_on_postgresql_with_two_workers_and_two_triggerers",
]


def _pytest_without_the_programs(tmp_path: Path, *, require_all: bool) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FGS_CHROMIUM": str(tmp_path / "no-chromium"),
        "FGS_REDIS_SERVER": str(tmp_path / "no-redis-server"),
        REQUIRE_ALL_TESTS: "1" if require_all else "0",
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rsE", "--timeout=60", *SELECTED],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_programs_skip_with_their_reason(tmp_path: Path) -> None:
    done = _pytest_without_the_programs(tmp_path, require_all=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 skipped" in done.stdout
    assert f"Chromium not found at {tmp_path / 'no-chromium'}" in done.stdout
    # PostgreSQL may be missing too on this machine; either way the reason names how to install it.
    assert "not found; run .ci/install-services.sh" in done.stdout
    assert "airflow-production" not in done.stdout  # no deployment was started


@pytest.mark.timeout(180)
def test_under_the_ci_switch_they_fail_instead(tmp_path: Path) -> None:
    done = _pytest_without_the_programs(tmp_path, require_all=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "skipped" not in done.stdout
    assert f"{REQUIRE_ALL_TESTS}=1: every test must run here" in done.stdout
    assert "2 error" in done.stdout or ("1 failed" in done.stdout and "1 error" in done.stdout), done.stdout
