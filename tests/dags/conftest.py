"""
The metadata DB and the example DAGs for the DAG tests.

The Airflow home itself is made hermetic by the root ``tests/conftest.py``, before Airflow is imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AIRFLOW_HOME, EXAMPLE_DAGS, demo


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
    from airflow_provider_fgs.compat import dag_bag

    bag = dag_bag(str(EXAMPLE_DAGS))
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
