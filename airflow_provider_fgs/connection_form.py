"""Declarative connection form of the ``functiongraph`` connection type (Airflow >= 3.2).

``CONN_FIELDS`` and ``UI_FIELD_BEHAVIOUR`` go into ``get_provider_info()["connection-types"]`` as
``conn-fields`` and ``ui-field-behaviour``. Each extra field is stored in the connection's extra JSON
under its own name, which is what :func:`airflow_provider_fgs.connection.parse_connection` reads.
Pure data: importing this module costs nothing.
"""

from __future__ import annotations

from typing import Any


def _field(label: str, description: str, kind: str, **schema: Any) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": [kind, "null"], **schema}}


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "region": _field("Region", "Region id, e.g. ap-southeast-1.", "string"),
    "project_id": _field(
        "Project ID",
        "Id of the project the functions belong to (required except with a project name).",
        "string",
    ),
    "auth_type": _field(
        "Auth type",
        "aksk (sign with Access Key/Secret Key), password (IAM user token) or token (pre-issued token). "
        "Inferred when empty.",
        "string",
    ),
    "domain_name": _field(
        "Account (domain) name", "Account the IAM user belongs to (password auth).", "string"
    ),
    "project_name": _field(
        "Project name", "Scope the IAM token by project name instead of id (password auth).", "string"
    ),
    "security_token": _field(
        "Security token", "Security token of temporary AK/SK credentials.", "string", format="password"
    ),
    "token": _field("Token", "A pre-issued IAM token (token auth).", "string", format="password"),
    "endpoint": _field(
        "FunctionGraph endpoint",
        "Override of https://functiongraph.{region}.myhuaweicloud.com (private endpoint, emulator).",
        "string",
    ),
    "iam_endpoint": _field("IAM endpoint", "Override of https://iam.{region}.myhuaweicloud.com.", "string"),
    "verify": _field(
        "Verify TLS", "Verify TLS certificates (strongly recommended).", "boolean", default=True
    ),
    "connect_timeout": _field(
        "Connect timeout (s)", "Seconds to establish a connection.", "number", default=10, minimum=0
    ),
    "read_timeout": _field(
        "Read timeout (s)",
        "Seconds to wait for an answer. Empty: a sync invocation waits as long as the function's own "
        "timeout allows (at most the gateway's 90 s, plus a margin); other calls wait 120 s.",
        "number",
        minimum=0,
    ),
    "retry_attempts": _field(
        "Retries",
        "Retries of throttled or transiently failed requests (0 disables).",
        "integer",
        default=4,
        minimum=0,
    ),
    "retry_sync_invoke": _field(
        "Retry sync invocations after they may have run",
        "Also retry a sync invocation after a read timeout, broken connection or 5xx other than 503. "
        "The function may then run twice: only for idempotent functions.",
        "boolean",
        default=False,
    ),
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["host", "port", "schema"],
    "relabeling": {
        "login": "Access Key (AK) or IAM user name",
        "password": "Secret Key (SK) or IAM password",
    },
    "placeholders": {
        "login": "AK (aksk auth) or IAM user name (password auth)",
        "password": "SK (aksk auth) or IAM password (password auth)",
        "extra": '{"proxies": {"https": "http://proxy:3128"}, "verify": "/path/to/ca.pem"}',
    },
}
