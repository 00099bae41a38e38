"""Fixtures of the integration tests: a real Airflow deployment and the emulator, on loopback.

Session-scoped, so the API tests and the browser tests share one deployment (about half a minute to
start on two cores). Both are started only when a test marked ``integration`` asks for them.

``deployment`` comes in two shapes, chosen by its parameter:

* ``local`` (the default): LocalExecutor on sqlite, one triggerer (:mod:`.deployment`);
* ``production``: PostgreSQL, CeleryExecutor with Redis, two workers and two triggerers
  (:mod:`.production`), marked ``production``.

A test runs on both with ``@pytest.mark.parametrize("deployment", SHAPES, indirect=True)`` (or on one
with ``[PRODUCTION_SHAPE]``). Pytest groups the tests by shape, so at most one deployment runs at a
time: switching shape stops the previous one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fgs.emulator.credentials_api import POD_IDENTITY_PATH
from airflow_provider_fgs.emulator.defaults import DEFAULT_ACCESS_KEYS, DEFAULT_PROJECT_ID, DEFAULT_REGION
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from tests.connections import emulator_extra
from tests.credential_sources import jwt
from tests.machine import require
from tests.statsd_listener import StatsdListener, statsd_missing_reason

from .airflow_api import AirflowApi
from .deployment import ADMIN_USER, AirflowDeployment
from .processes import ManagedProcess, tail, wait_for
from .production import CeleryDeployment
from .services import services_missing_reason

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = ROOT / "example_dags"
EXAMPLE_FUNCTIONS = EXAMPLE_DAGS / "functions"
INTEGRATION_DAGS = Path(__file__).resolve().parent / "dags"
INTEGRATION_FUNCTIONS = Path(__file__).resolve().parent / "functions"
# The unit tests' handlers too (counted_sleep, which counts its own runs, for the restart tests).
TEST_FUNCTIONS = ROOT / "tests" / "functions"
FAST_TRIGGERER_FAILOVER = {
    # A triggerer whose heartbeat is older than this is dead: its triggers go to another one.
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
}
ARTIFACTS = ROOT / "artifacts" / "integration"
CONN_ID = "functiongraph_default"
phase_report_key = pytest.StashKey[dict[str, pytest.TestReport]]()
CHAIN_DAG = "functiongraph_chain"
DEFERRABLE_DAG = "functiongraph_deferrable"
TASKFLOW_DAG = "functiongraph_taskflow"
CHAIN_TEXT = "Alpha beta, alpha GAMMA; alpha beta delta."
RUN_TIMEOUT = 150.0
# Per-test limit (pytest-timeout): the first test of a session also pays for starting Airflow.
INTEGRATION_TIMEOUT = 420
LOCAL = "local"
PRODUCTION = "production"
PRODUCTION_SHAPE = pytest.param(PRODUCTION, marks=pytest.mark.production, id=PRODUCTION)
SHAPES = [pytest.param(LOCAL, id=LOCAL), PRODUCTION_SHAPE]
"""Both deployment shapes, for ``@pytest.mark.parametrize("deployment", SHAPES, indirect=True)``."""


@dataclass
class EmulatorServer:
    """The ``fgs-emulator`` command running in the background."""

    process: ManagedProcess
    url: str
    region: str = DEFAULT_REGION
    project_id: str = DEFAULT_PROJECT_ID


@dataclass
class Deployment:
    """What the integration tests talk to."""

    airflow: AirflowDeployment
    api: AirflowApi
    emulator: EmulatorServer
    shape: str = LOCAL

    def logs(self) -> str:
        return self.airflow.logs(extra=[self.emulator.process])

    def connection_body(self, conn_id: str = CONN_ID) -> dict[str, Any]:
        """A ``functiongraph`` connection to the emulator with its demo access key (API body shape)."""
        access_key, secret_key = next(iter(DEFAULT_ACCESS_KEYS.items()))
        extra = emulator_extra(self.emulator)
        return {
            "connection_id": conn_id,
            "conn_type": "functiongraph",
            "login": access_key,
            "password": secret_key,
            "extra": json.dumps(extra),
        }


def _start_emulator(
    workdir: Path,
    function_dirs: tuple[Path, ...] = (EXAMPLE_FUNCTIONS, INTEGRATION_FUNCTIONS, TEST_FUNCTIONS),
) -> EmulatorServer:
    process = ManagedProcess(
        "fgs-emulator",
        [
            sys.executable,
            "-m",
            "airflow_provider_fgs.emulator.cli",
            "--port",
            "0",
            *(arg for directory in function_dirs for arg in ("--functions", str(directory))),
            # the platform's lockout of an AK/SK or IAM user after repeated rejections
            "--lockout",
        ],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        log_path=workdir / "fgs-emulator.log",
        cwd=workdir,
    )
    process.start()

    def url() -> str | None:
        match = re.search(r"^(http://\S+)$", tail(process.log_path, 200), re.MULTILINE)
        return match.group(1) if match else None

    try:
        return EmulatorServer(process, wait_for("fgs-emulator to print its URL", url, 30, [process]))
    except BaseException:
        process.stop()
        raise


def _pod_identity_env(workdir: Path, emulator: EmulatorServer) -> dict[str, str]:
    """
    The hosts as a CCE pod with an identity (the emulator's stand-in), and no other credential source: a
    connection without a stored secret finds the pod's credentials through the chain
    (``test_credentials.py``); the others hold their secrets.
    """
    token = workdir / "pod-identity-token"
    token.write_text(jwt(lifetime=24 * 3600.0), encoding="utf-8")
    return {
        "HC_CONTAINER_CREDENTIALS_FULL_URI": f"{emulator.url}{POD_IDENTITY_PATH}",
        "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token),
        "HUAWEICLOUD_SDK_CREDENTIALS_FILE": str(workdir / "no-huaweicloud-profile"),
    }


def _dags_folder(workdir: Path) -> Path:
    """The example DAGs plus the integration-only DAGs (50-task mapped, cancel, ...), in one folder."""
    folder = workdir / "dags"
    folder.mkdir()
    for source in [*EXAMPLE_DAGS.glob("example_*.py"), *INTEGRATION_DAGS.glob("*.py")]:
        shutil.copy(source, folder / source.name)
    # What the example DAGs read beside them (the release's code), and what keeps it from being parsed.
    shutil.copytree(EXAMPLE_DAGS / "functions" / "release", folder / "functions" / "release")
    shutil.copy(EXAMPLE_DAGS / ".airflowignore", folder / ".airflowignore")
    return folder


@pytest.fixture(scope="session")
def statsd() -> Iterator[StatsdListener]:
    """
    A StatsD server on a free loopback port, started before the deployments: the local deployment's
    ``[metrics]`` send it Airflow's metrics and the provider's (plain StatsD, no tags).
    """
    with StatsdListener() as listener:
        yield listener


def _metrics_env(statsd: StatsdListener) -> dict[str, str]:
    """StatsD to ``statsd``, when Airflow's StatsD client is installed (else each component logs an error)."""
    return statsd.airflow_env() if statsd_missing_reason() is None else {}


@pytest.fixture(scope="session", params=[pytest.param(LOCAL, id=LOCAL)])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, statsd: StatsdListener
) -> Iterator[Deployment]:
    """The emulator plus Airflow serving example_dags, in the shape given by the parameter (``local``)."""
    shape: str = request.param
    if shape == PRODUCTION:
        require(services_missing_reason())
    workdir = tmp_path_factory.mktemp(f"airflow-{shape}")
    emulator = _start_emulator(workdir)
    home = workdir / "airflow_home"
    home.mkdir()
    env = {**FAST_TRIGGERER_FAILOVER, **_pod_identity_env(workdir, emulator)}
    airflow = (
        CeleryDeployment(home, _dags_folder(workdir), extra_env=env)
        if shape == PRODUCTION
        else AirflowDeployment(home, _dags_folder(workdir), extra_env={**env, **_metrics_env(statsd)})
    )
    try:
        airflow.start()
        api = AirflowApi(
            airflow.url,
            ADMIN_USER,
            airflow.password,
            on_timeout=lambda: airflow.logs(extra=[emulator.process]),
        )
        yield Deployment(airflow, api, emulator, shape)
    finally:
        try:
            airflow.stop()
        finally:
            emulator.process.stop()
    airflow.check_loopback()


@pytest.fixture(scope="session")
def functiongraph_connection(deployment: Deployment) -> dict[str, Any]:
    """``functiongraph_default`` created through the REST API, pointing at the emulator."""
    body = deployment.connection_body()
    deployment.api.create_connection(body)
    return body


@dataclass
class Runs:
    """Runs of the example DAGs, triggered once per deployment (they execute concurrently)."""

    chain: str
    deferrable: str
    taskflow: str


@pytest.fixture(scope="session")
def runs(deployment: Deployment, functiongraph_connection: dict[str, Any]) -> Runs:
    api = deployment.api
    for dag_id in (CHAIN_DAG, DEFERRABLE_DAG, TASKFLOW_DAG):
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)
    return Runs(
        chain=api.trigger(CHAIN_DAG, conf={"text": CHAIN_TEXT}),
        deferrable=api.trigger(DEFERRABLE_DAG),
        taskflow=api.trigger(TASKFLOW_DAG),
    )


METRICS_DAG = "functiongraph_metrics"


@pytest.fixture(scope="session")
def metrics_run(deployment: Deployment, functiongraph_connection: dict[str, Any]) -> str:
    """
    A finished run of ``functiongraph_metrics``: its ``succeed`` task invoked ``noop`` from a worker, its
    ``fail`` task ``fail`` from the triggerer, whose function failed (the run failed); ``environ`` and
    ``memory`` were invoked asynchronously and waited for on workers.
    """
    api = deployment.api
    api.wait_for_dag(METRICS_DAG)
    api.unpause(METRICS_DAG)
    run_id = api.trigger(METRICS_DAG)
    assert api.wait_for_run(METRICS_DAG, run_id, timeout=RUN_TIMEOUT) == "failed"
    assert api.task_states(METRICS_DAG, run_id) == {
        "succeed": "success",
        "fail": "failed",
        "start_and_wait": "success",
        "start": "success",
        "wait": "success",
    }
    return run_id


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """
    Keep each phase's report on the item, so fixtures can react to a failed test (screenshots), and
    quote the tail of each component's log in a failed test's report: the components outlive the test.
    """
    report: pytest.TestReport = yield
    item.stash.setdefault(phase_report_key, {})[report.when] = report
    deployment = getattr(item, "funcargs", {}).get("deployment")
    if report.failed and report.when == "call" and isinstance(deployment, Deployment):
        try:
            logs = deployment.logs()
        except Exception as err:  # never in place of the test's own failure
            logs = f"(could not read them: {err!r})"
        report.sections.append(("the deployment's component logs", logs))
    return report


@pytest.fixture
def probe_hook(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> FunctionGraphHook:
    """A hook in the test process, talking to the deployment's emulator (invocation records, configs)."""
    body = deployment.connection_body("functiongraph_probe")
    connection = {**body, "extra": json.loads(body["extra"])}
    connection.pop("connection_id")
    monkeypatch.setenv("AIRFLOW_CONN_FUNCTIONGRAPH_PROBE", json.dumps(connection))
    return FunctionGraphHook("functiongraph_probe")
