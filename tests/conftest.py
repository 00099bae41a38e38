"""
Shared fixtures: a hermetic Airflow home, and the emulator serving example and test-only handlers.

Airflow reads its home, config and metadata DB URL when it is first imported, and importing the
provider imports Airflow. So before any import below, the environment points Airflow at a temporary
home (sqlite, the example DAGs, no Airflow examples): no test reads or writes ``~/airflow``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = ROOT / "example_dags"
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="fgs-test-airflow-"))


def _load_demo() -> ModuleType:
    """example_dags/run_demo.py (not a package): its helpers are the ones the README demo uses."""
    spec = importlib.util.spec_from_file_location("fgs_run_demo", EXAMPLE_DAGS / "run_demo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = _load_demo()
os.environ.update(demo.hermetic_airflow_env(AIRFLOW_HOME, EXAMPLE_DAGS))

from tests import loopback_guard  # noqa: E402

loopback_guard.install()

import json  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from airflow_provider_fgs.emulator import FunctionGraphEmulator  # noqa: E402
from tests.connections import emulator_extra  # noqa: E402

FUNCTION_DIRS = [EXAMPLE_DAGS / "functions", ROOT / "tests" / "functions"]
# Tests of what Airflow's line changes little (the emulator, whose starlette and uvicorn follow each
# line's pins, and the test harness's machine checks): marked airflow_independent, which CI runs on the
# newest line only. The emulator still serves every line's other tests (docs/compatibility.md).
AIRFLOW_INDEPENDENT = [ROOT / "tests" / "emulator", ROOT / "tests" / "test_machine_requirements.py"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.path == path or path in item.path.parents for path in AIRFLOW_INDEPENDENT):
            item.add_marker(pytest.mark.airflow_independent)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """What a test needs from the machine (``tests.machine.needs``), checked before its fixtures start."""
    from tests.machine import require

    for mark in item.iter_markers("machine"):
        require(mark.args[0])


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _one_in_process_execution_api() -> Iterator[None]:
    """
    One in-process Execution API for every ``dag.test()`` of the session, as Airflow 3.3 has.

    Before 3.3, ``dag.test()`` builds a new Execution API (a FastAPI app and an event-loop thread
    that is never stopped) for every task it runs: 3 to 4 s per task on Airflow 3.2 here, which made
    a 25-task DAG test outlast its timeout. Airflow 3.3 caches it (apache/airflow#65235); older
    lines get the same cache for the test session. Nothing the provider does depends on it.
    """
    from airflow.sdk.execution_time import supervisor

    original = supervisor.in_process_api_server
    if hasattr(original, "cache_info"):  # 3.3 and later cache it already
        yield
        return
    supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(original)
    yield
    supervisor.in_process_api_server = original


@pytest.fixture(autouse=True)
def _nothing_leaves_loopback() -> Iterator[None]:
    """Fail a test that tried to reach another address, even when the code under test swallowed the error."""
    before = len(loopback_guard.attempts())
    yield
    tried = loopback_guard.attempts()[before:]
    if tried:
        pytest.fail("\n".join(tried), pytrace=False)


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
        # Short backoff keeps retry tests fast; the policy itself is unchanged.
        "extra": emulator_extra(emulator, retry_min_wait=0.05, retry_max_wait=0.2),
    }
    monkeypatch.setenv("AIRFLOW_CONN_FUNCTIONGRAPH_DEFAULT", json.dumps(connection))


@pytest.fixture
def emu(emulator: FunctionGraphEmulator) -> Iterator[FunctionGraphEmulator]:
    """
    The session emulator with no faults, zeroed counters and an empty token cache, before and after;
    its token lifetime is restored afterwards.
    """
    from airflow_provider_fgs.client.tokens import TOKEN_CACHE

    emulator.clear_faults()
    emulator.reset_stats()
    TOKEN_CACHE.clear()
    clear_host_cache()
    yield emulator
    emulator.clear_faults()
    emulator.set_token_ttl(86400.0)
    TOKEN_CACHE.clear()
    clear_host_cache()


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No credential source of the machine's: every Huawei SDK variable unset, a HOME with no profile."""
    from airflow_provider_fgs.client.sourced_credentials import SourcedCredentials
    from tests.credential_sources import SDK_VARIABLES

    for name in SDK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    SourcedCredentials.clear()
    return monkeypatch


HOST_CACHE_DIR = Path(os.environ["AIRFLOW__FUNCTIONGRAPH__HOST_CACHE_DIR"])


@pytest.fixture(autouse=True)
def _connections_read_afresh() -> None:
    """
    Each test reads its connections afresh: the tests reuse connection ids with other settings within
    the 30 s that a triggerer process reuses a connection it has read (``CONNECTION_TTL_S``).
    """
    from airflow_provider_fgs.hooks import functiongraph_async

    functiongraph_async._connections.clear()


@pytest.fixture(autouse=True)
def _function_settings_read_afresh() -> None:
    """
    Each test reads functions' config and async settings afresh: the process caches them per endpoint
    and function (also a refused read), and the session emulator's functions serve many tests, so a
    test's requests would otherwise depend on which tests ran before it in the same process.
    """
    from airflow_provider_fgs.client.settings_cache import ASYNC_INVOKE_CONFIGS, FUNCTION_CONFIGS

    FUNCTION_CONFIGS.clear()
    ASYNC_INVOKE_CONFIGS.clear()


def clear_host_cache() -> None:
    """Forget the tokens and cool-downs that earlier tests left in the host cache directory."""
    from airflow_provider_fgs.client.cooldown import CredentialCoolDowns

    for path in HOST_CACHE_DIR.glob("*"):
        path.unlink()
    CredentialCoolDowns._local.clear()
