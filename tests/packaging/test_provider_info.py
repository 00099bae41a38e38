"""
``get_provider_info()`` against the running Airflow's own schemas, and as its providers manager reads it.

Airflow validates the provider info with ``provider_info.schema.json`` when it discovers providers (a
provider that fails is skipped with a warning), and a connection form's field behaviour with
``customized_form_field_behaviours.schema.json``. Both ship inside the installed Airflow, so each line
checks against its own.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest

from airflow_provider_fgs import __version__
from airflow_provider_fgs.get_provider_info import get_provider_info
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook

AIRFLOW = Path(airflow.__file__).parent
INFO = get_provider_info()


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((AIRFLOW / name).read_text())
    return loaded


def errors(instance: object, against: dict[str, Any]) -> list[str]:
    validator = jsonschema.validators.validator_for(against)
    validator.check_schema(against)
    return [
        f"{list(error.absolute_path)}: {error.message}" for error in validator(against).iter_errors(instance)
    ]


def test_provider_info_is_valid_for_airflows_schema() -> None:
    assert errors(INFO, schema("provider_info.schema.json")) == []


def test_every_key_is_one_the_schema_names() -> None:
    # The schema lets any other key through, and Airflow ignores it: a misspelt key would go unnoticed
    # (as would provider.yaml's "versions": Airflow reads the version from the package's metadata).
    assert set(INFO) - set(schema("provider_info.schema.json")["properties"]) == set()


def test_connection_form_behaviour_is_valid_for_airflows_schema() -> None:
    behaviour = schema("customized_form_field_behaviours.schema.json")
    for connection_type in INFO["connection-types"]:
        table = connection_type["ui-field-behaviour"]
        # Airflow 3.2+ reads these three kebab-case keys (and ignores any other), then validates.
        assert set(table) <= {"hidden-fields", "relabeling", "placeholders"}
        read = {
            "hidden_fields": table.get("hidden-fields", []),
            "relabeling": table.get("relabeling", {}),
            "placeholders": table.get("placeholders", {}),
        }
        assert errors(read, behaviour) == []
    # Airflow 3.1 asks the hook instead.
    assert errors(FunctionGraphHook.get_ui_field_behaviour(), behaviour) == []


def _named_objects() -> list[str]:
    """Every module and class the provider info names, by dotted path."""
    modules = [
        module
        for kind in ("hooks", "operators", "sensors", "triggers")
        for entry in INFO.get(kind, [])
        for module in entry["python-modules"]
    ]
    classes = [
        *INFO.get("extra-links", []),
        *(entry["hook-class-name"] for entry in INFO["connection-types"]),
        *(entry["class-name"] for entry in INFO.get("task-decorators", [])),
    ]
    return modules + classes


@pytest.mark.parametrize("dotted_path", _named_objects())
def test_every_module_and_class_named_imports(dotted_path: str) -> None:
    try:
        importlib.import_module(dotted_path)
    except ModuleNotFoundError:
        module, _, name = dotted_path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), dotted_path


READ_PROVIDER = """
import importlib
import json
from airflow.providers_manager import ProvidersManager

manager = ProvidersManager()
provider = manager.providers["airflow-provider-fgs"]
decorators = {}
for entry in provider.data.get("task-decorators", []):
    module, _, name = entry["class-name"].rpartition(".")
    decorators[entry["name"]] = manager.taskflow_decorators[entry["name"]] is getattr(
        importlib.import_module(module), name
    )
print(json.dumps({"version": provider.version, "data": provider.data, "decorators": decorators}))
"""


def test_airflows_providers_manager_loads_the_provider() -> None:
    # In a fresh interpreter: the providers manager is a process-wide singleton.
    done = subprocess.run(
        [sys.executable, "-c", READ_PROVIDER], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["version"] == __version__
    # Airflow adds keys of its own ("documentation-url"), and keeps ours as they are.
    assert {key: loaded["data"][key] for key in INFO} == json.loads(json.dumps(INFO))
    # @task.<name> is the provider's decorator.
    assert loaded["decorators"] == {decorator["name"]: True for decorator in INFO.get("task-decorators", [])}
