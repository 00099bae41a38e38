"""What Airflow learns of this provider: hooks, operators, sensors, triggers, links, connection type."""

from __future__ import annotations

from typing import Any

from airflow_provider_fgs.hooks.connection_form import CONN_FIELDS, UI_FIELD_BEHAVIOUR


def get_provider_info() -> dict[str, Any]:
    """Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-fgs",
        "name": "Huawei Cloud FunctionGraph",
        "description": "Invoke Huawei Cloud FunctionGraph functions from Airflow.",
        "integrations": [
            {
                "integration-name": "Huawei Cloud FunctionGraph",
                "external-doc-url": "https://support.huaweicloud.com/intl/en-us/functiongraph/index.html",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Huawei Cloud FunctionGraph",
                "python-modules": [
                    "airflow_provider_fgs.hooks.functiongraph",
                    "airflow_provider_fgs.hooks.functiongraph_async",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Huawei Cloud FunctionGraph",
                "python-modules": [
                    "airflow_provider_fgs.operators.functiongraph",
                    "airflow_provider_fgs.operators.async_invocation",
                    "airflow_provider_fgs.operators.release",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Huawei Cloud FunctionGraph",
                "python-modules": [
                    "airflow_provider_fgs.sensors.functiongraph",
                    "airflow_provider_fgs.sensors.release",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Huawei Cloud FunctionGraph",
                "python-modules": [
                    "airflow_provider_fgs.triggers.functiongraph",
                    "airflow_provider_fgs.triggers.async_invocation",
                    "airflow_provider_fgs.triggers.release",
                ],
            }
        ],
        "task-decorators": [
            {
                "name": "functiongraph",
                "class-name": "airflow_provider_fgs.decorators.functiongraph.functiongraph_task",
            }
        ],
        "extra-links": [
            "airflow_provider_fgs.links.functiongraph.FunctionGraphConsoleLink",
            "airflow_provider_fgs.links.functiongraph.FunctionGraphLogLink",
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_fgs.hooks.functiongraph.FunctionGraphHook",
                "hook-name": "Huawei Cloud FunctionGraph",
                "connection-type": "functiongraph",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
