"""
The package as users install it: the wheel and the sdist built from this checkout.

They are built once for the module by the build backend itself (hatchling, a test extra), into a
temporary directory: no network and no isolated build environment. CI also installs the wheel into a
fresh environment and runs the example DAGs against it (``.ci/check-wheel``).
"""

from __future__ import annotations

import configparser
import hashlib
import re
import subprocess
import sys
import tarfile
import zipfile
from email import message_from_string
from email.message import Message
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from airflow_provider_fgs import __version__

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "airflow_provider_fgs"
DIST_INFO = f"airflow_provider_fgs-{__version__}.dist-info"
SDIST_ROOT = f"airflow_provider_fgs-{__version__}"
# https://www.apache.org/licenses/LICENSE-2.0.txt
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
# What an installation pulls in; everything else (pytest, the SDKs, Celery...) is the `test` extra.
RUNTIME_DEPENDENCIES = {"apache-airflow", "requests", "tenacity", "aiohttp"}
BUILD = """
import sys
from hatchling.build import build_sdist, build_wheel
print(build_wheel(sys.argv[1]))
print(build_sdist(sys.argv[1]))
"""


def build(source: Path, out: Path) -> tuple[Path, Path]:
    """The wheel and the sdist that hatchling builds from ``source`` into ``out``."""
    done = subprocess.run(
        [sys.executable, "-c", BUILD, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    wheel, sdist = done.stdout.split()[-2:]
    return out / wheel, out / sdist


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build(ROOT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def wheel_files(dists: tuple[Path, Path]) -> dict[str, bytes]:
    with zipfile.ZipFile(dists[0]) as wheel:
        return {name: wheel.read(name) for name in wheel.namelist()}


@pytest.fixture(scope="module")
def sdist_names(dists: tuple[Path, Path]) -> set[str]:
    with tarfile.open(dists[1]) as sdist:
        return {name.removeprefix(f"{SDIST_ROOT}/") for name in sdist.getnames()}


@pytest.fixture(scope="module")
def metadata(wheel_files: dict[str, bytes]) -> Message:
    return message_from_string(wheel_files[f"{DIST_INFO}/METADATA"].decode())


def test_the_dists_carry_the_packages_version(dists: tuple[Path, Path], metadata: Message) -> None:
    assert [path.name for path in dists] == [
        f"airflow_provider_fgs-{__version__}-py3-none-any.whl",
        f"{SDIST_ROOT}.tar.gz",
    ]
    assert metadata["Name"] == "airflow-provider-fgs"
    assert metadata["Version"] == __version__


def test_license_is_apache_2_in_both_dists(wheel_files: dict[str, bytes], sdist_names: set[str]) -> None:
    license_text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(license_text).hexdigest() == APACHE_2_SHA256  # the text, unaltered
    assert wheel_files[f"{DIST_INFO}/licenses/LICENSE"] == license_text
    assert "LICENSE" in sdist_names


def test_metadata_license_python_and_classifiers(metadata: Message) -> None:
    assert float(metadata["Metadata-Version"]) >= 2.4  # PEP 639's License-Expression
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Requires-Python"] == ">=3.11"
    classifiers = metadata.get_all("Classifier")
    assert "Programming Language :: Python :: 3 :: Only" in classifiers
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    # PEP 639: with a license expression, license classifiers are deprecated (and refused by PyPI).
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert metadata["Description-Content-Type"] == "text/markdown"


def test_runtime_dependencies_are_airflow_requests_tenacity_and_aiohttp_only(metadata: Message) -> None:
    requirements = [Requirement(line) for line in metadata.get_all("Requires-Dist")]
    runtime = {canonicalize_name(r.name) for r in requirements if r.marker is None}
    assert runtime == RUNTIME_DEPENDENCIES
    extras = {str(r.marker) for r in requirements if r.marker is not None}
    assert extras == {'extra == "test"'}


def test_entry_points_register_the_provider_the_emulator_and_its_pytest_plugin(
    wheel_files: dict[str, bytes],
) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel_files[f"{DIST_INFO}/entry_points.txt"].decode())
    assert dict(entry_points["apache_airflow_provider"]) == {
        "provider_info": "airflow_provider_fgs.get_provider_info:get_provider_info"
    }
    assert dict(entry_points["console_scripts"]) == {"fgs-emulator": "airflow_provider_fgs.emulator.cli:main"}
    assert dict(entry_points["pytest11"]) == {"fgs_emulator": "airflow_provider_fgs.emulator.pytest_plugin"}
    assert dict(entry_points["airflow.plugins"]) == {
        "functiongraph": "airflow_provider_fgs.ui.plugin:FunctionGraphPlugin"
    }


def test_wheel_holds_the_package_and_nothing_else(wheel_files: dict[str, bytes]) -> None:
    package = {
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    inside = {name for name in wheel_files if not name.startswith(f"{DIST_INFO}/")}
    assert inside == package
    assert "airflow_provider_fgs/py.typed" in inside  # PEP 561: the package's annotations are used
    assert not [name for name in wheel_files if re.match(r"(tests|bench|example_dags)/", name)]


def test_sdist_holds_what_the_readme_and_tests_refer_to(sdist_names: set[str]) -> None:
    for name in (
        "PKG-INFO",
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "LICENSE",
        "example_dags/run_demo.py",
        "example_dags/.airflowignore",
        "docs/compatibility.md",
        "constraints/airflow-3.3.txt",  # docs/compatibility.md: pip install ... -c constraints/...
        "airflow_provider_fgs/py.typed",
        "tests/conftest.py",
    ):
        assert name in sdist_names, name
    assert not [name for name in sdist_names if re.search(r"(^|/)(__pycache__|\.ci-venvs|artifacts)/", name)]


def test_the_sdist_builds_the_same_wheel(
    dists: tuple[Path, Path], wheel_files: dict[str, bytes], tmp_path: Path
) -> None:
    with tarfile.open(dists[1]) as sdist:
        sdist.extractall(tmp_path, filter="data")
    wheel, _ = build(tmp_path / SDIST_ROOT, tmp_path / "dist")
    with zipfile.ZipFile(wheel) as rebuilt:
        assert sorted(rebuilt.namelist()) == sorted(wheel_files)


def test_the_changelogs_newest_version_is_the_packages() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.M)
    assert versions, "no '## [X.Y.Z] - date' heading"
    assert versions[0] == __version__
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))), reverse=True)


def test_the_long_description_links_to_the_repository_at_the_release_tag(metadata: Message) -> None:
    """The package index shows README.md away from the repository: its links must be absolute there."""
    description = metadata.get_payload()
    assert isinstance(description, str)
    assert description.startswith("# airflow-provider-fgs")
    targets = re.findall(r"\]\(([^)\s]+)\)", description)
    assert targets
    assert [target for target in targets if "://" not in target] == []
    base = f"https://github.com/airflow-provider-fgs/airflow-provider-fgs/blob/v{__version__}/"
    sources = [url.split(", ", 1)[1] for url in metadata.get_all("Project-URL") if url.startswith("Source, ")]
    assert sources == [base.split("/blob/")[0]]
    in_repository = [target.removeprefix(base).split("#")[0] for target in targets if target.startswith(base)]
    assert "docs/connection.md" in in_repository
    assert [path for path in in_repository if not (ROOT / path).is_file()] == []
