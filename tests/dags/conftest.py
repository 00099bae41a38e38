"""
A hermetic Airflow for the DAG tests: a temporary AIRFLOW_HOME with a migrated sqlite DB.

Airflow reads its home, config and DB URL when ``airflow`` is first imported. pytest imports this file
when it collects ``tests/dags``, which is after the root ``tests/conftest.py`` and the installed pytest
plugins were imported, and those may already have imported Airflow. So the environment is set here at
import time (before any test runs) and, when Airflow was already imported, its settings are re-read
from that environment and its ORM is pointed at the new database. The DB is migrated once per session.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
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
if "airflow.settings" in sys.modules:
    from airflow import settings

    settings.configure_vars()
    settings.reconfigure_orm()


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The migrated metadata DB of the session's Airflow home (migrated once)."""
    from airflow import settings
    from airflow.utils.db import upgradedb

    assert str(AIRFLOW_HOME) in settings.SQL_ALCHEMY_CONN, settings.SQL_ALCHEMY_CONN
    upgradedb()
    return AIRFLOW_HOME / "airflow.db"


@pytest.fixture(scope="session")
def example_dag_bag(airflow_db: Path) -> Any:
    """The example DAGs, parsed once; a test fails on any import error."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    return bag


@pytest.fixture(scope="session")
def emulator_connection(emulator: Any) -> Iterator[None]:
    """``functiongraph_default`` points at the session's emulator for the whole DAG test session."""
    previous = os.environ.get(demo.CONN_ENV)
    os.environ[demo.CONN_ENV] = demo.emulator_connection(emulator.url, emulator.region, emulator.project_id)
    yield
    if previous is None:
        os.environ.pop(demo.CONN_ENV, None)
    else:
        os.environ[demo.CONN_ENV] = previous
