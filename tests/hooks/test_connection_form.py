"""
The connection form as the running Airflow's UI receives it, on every supported line.

Airflow 3.2+ reads ``conn-fields``/``ui-field-behaviour`` from the provider info; 3.1 asks the hook's
``get_connection_form_widgets``/``get_ui_field_behaviour``. Either way the api-server's hook metadata
(what the UI's connection form is drawn from) must show the same fields. It is read in a fresh
interpreter, as the api-server reads it: the providers manager is a process-wide singleton.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from airflow_provider_fgs.compat import AIRFLOW_V_3_2_PLUS
from airflow_provider_fgs.hooks.connection_form import CONN_FIELDS, UI_FIELD_BEHAVIOUR

READ_HOOK_META = """
import json
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
from airflow.providers_manager import ProvidersManager

meta = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "functiongraph"]
hook = ProvidersManager().hooks["functiongraph"]
print(json.dumps({
    "meta": [m.model_dump(mode="json") for m in meta],
    "testable": hook.connection_testable,
    "hook_class_name": hook.hook_class_name,
}))
"""


@pytest.fixture(scope="module")
def hook_meta() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", READ_HOOK_META], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _expected_type_and_value(spec: dict[str, Any]) -> tuple[str, Any]:
    kind, default = spec["schema"]["type"][0], spec["schema"].get("default")
    if kind == "number" and not AIRFLOW_V_3_2_PLUS:
        # 3.1 accepts no decimal form field: a text field holding the number's text.
        return "string", None if default is None else str(default)
    return kind, default


def test_the_ui_offers_the_functiongraph_connection_type(hook_meta: dict[str, Any]) -> None:
    assert len(hook_meta["meta"]) == 1
    assert hook_meta["meta"][0]["hook_name"] == "Huawei Cloud FunctionGraph"
    assert hook_meta["hook_class_name"] == "airflow_provider_fgs.hooks.functiongraph.FunctionGraphHook"
    assert hook_meta["testable"] is True


def test_every_extra_field_with_its_label_description_type_and_default(hook_meta: dict[str, Any]) -> None:
    extra_fields = hook_meta["meta"][0]["extra_fields"]
    assert list(extra_fields) == list(CONN_FIELDS)
    for name, spec in CONN_FIELDS.items():
        shown = extra_fields[name]
        kind, default = _expected_type_and_value(spec)
        assert shown["schema"]["title"] == spec["label"], name
        assert shown["description"] == spec["description"], name
        assert shown["schema"]["type"] == [kind, "null"], name
        assert shown["schema"].get("format") == spec["schema"].get("format"), name
        assert shown["value"] == default, name
        if AIRFLOW_V_3_2_PLUS:  # 3.1 draws text fields only
            for key in ("enum", "values_display"):
                assert shown["schema"].get(key) == spec["schema"].get(key), name


def test_the_auth_types_offered_are_those_the_connection_accepts() -> None:
    from airflow_provider_fgs.client.settings import AUTH_TYPES
    from airflow_provider_fgs.hooks.connection_form import AUTH_MODES

    assert tuple(AUTH_MODES) == AUTH_TYPES
    assert CONN_FIELDS["auth_type"]["schema"]["enum"] == [None, *AUTH_TYPES]
    assert all(mode in CONN_FIELDS["auth_type"]["description"] for mode in AUTH_TYPES)


def test_standard_fields_hidden_relabelled_and_with_placeholders(hook_meta: dict[str, Any]) -> None:
    standard = hook_meta["meta"][0]["standard_fields"]
    ui_name = {"schema": "url_schema"}
    for field in UI_FIELD_BEHAVIOUR["hidden-fields"]:
        assert standard[ui_name.get(field, field)]["hidden"] is True, field
    for field, title in UI_FIELD_BEHAVIOUR["relabeling"].items():
        assert standard[field]["title"] == title
        assert standard[field]["hidden"] is False
    for field, placeholder in UI_FIELD_BEHAVIOUR["placeholders"].items():
        if field in standard:  # the extra JSON box has no entry among the standard fields
            assert standard[field]["placeholder"] == placeholder
