"""pytest plugin (entry point ``fgs_emulator``): the ``functiongraph_emulator`` fixture for DAG tests.

Configure where handlers live with the ini option ``fgs_functions_dir`` (relative to the rootdir,
default ``functions``) or the command-line option ``--fgs-functions DIR``, or override the
``functiongraph_functions_dir`` fixture. The emulator module is imported only when the fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_fgs.emulator.server import FunctionGraphEmulator


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "fgs_functions_dir", "directory of FunctionGraph handler files for the emulator", default="functions"
    )
    parser.addoption(
        "--fgs-functions", default=None, help="directory of FunctionGraph handlers for the emulator"
    )


@pytest.fixture(scope="session")
def functiongraph_functions_dir(pytestconfig: pytest.Config) -> Path:
    """Directory of handler files served by ``functiongraph_emulator``."""
    option = pytestconfig.getoption("--fgs-functions")
    value = option or str(pytestconfig.getini("fgs_functions_dir"))
    path = Path(value)
    return path if path.is_absolute() else pytestconfig.rootpath / path


@pytest.fixture(scope="session")
def functiongraph_emulator(functiongraph_functions_dir: Path) -> Iterator[FunctionGraphEmulator]:
    """A running FunctionGraph + IAM emulator (session scoped); ``.url`` is its endpoint."""
    from airflow_provider_fgs.emulator.server import FunctionGraphEmulator

    with FunctionGraphEmulator(functiongraph_functions_dir) as emulator:
        yield emulator
