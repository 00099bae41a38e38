"""Connection form of the ``functiongraph`` connection type.

``CONN_FIELDS`` and ``UI_FIELD_BEHAVIOUR`` go into ``get_provider_info()["connection-types"]`` as
``conn-fields`` and ``ui-field-behaviour`` (read by Airflow >= 3.2). Airflow 3.1 reads the same form
from the hook's ``get_connection_form_widgets`` / ``get_ui_field_behaviour``, which return
:func:`legacy_form_widgets` and :func:`legacy_field_behaviour`, built from the same two tables. Each
extra field is stored in the connection's extra JSON under its own name, which is what
:func:`airflow_provider_fgs.client.settings.parse_connection` reads. Importing this module costs nothing.
"""

from __future__ import annotations

from typing import Any

AUTH_MODES: dict[str, str] = {
    "aksk": "AK/SK: sign with the Access Key (login) and Secret Key (password)",
    "password": "IAM user: a token for the user (login, password) of the account (domain) name",
    "token": "Token: a pre-issued IAM token (extra token)",
    "chain": "Huawei SDK credential chain: oidc, env, profile, metadata, pod_identity, first found",
    "oidc": "OIDC agency: HUAWEICLOUD_OIDC_* id token exchanged at STS",
    "env": "Environment: HUAWEICLOUD_SDK_AK/SK, or HUAWEICLOUD_SDK_IDP_ID with an id token file",
    "profile": "Profile: the [basic] section of ~/.huaweicloud/credentials",
    "metadata": "ECS agency: temporary keys from the instance's metadata service",
    "pod_identity": "CCE pod identity: HC_CONTAINER_CREDENTIALS_FULL_URI with its token file",
}
"""The connection's authentication modes and what each means (the form's dropdown)."""


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
        "aksk, password, token, or credentials without a stored secret: chain (the Huawei SDK's credential "
        "chain) or one of its sources, oidc, env, profile, metadata, pod_identity. Empty: inferred from "
        "the fields filled in, the chain when no secret is.",
        "string",
        enum=[None, *AUTH_MODES],
        values_display={"None": "Inferred from the fields filled in", **AUTH_MODES},
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
    "iam_endpoint": _field(
        "IAM endpoint",
        "Override of https://iam.{region}.myhuaweicloud.com (also where a federated id token is exchanged).",
        "string",
    ),
    "sts_endpoint": _field(
        "STS endpoint",
        "Where an OIDC agency is assumed (auth type oidc). Empty: HUAWEICLOUD_SDK_STS_ENDPOINT, else "
        "https://sts.{region}.myhuaweicloud.com.",
        "string",
    ),
    "metadata_endpoint": _field(
        "ECS metadata endpoint",
        "Where the ECS instance's agency credentials are read (auth type metadata). Default "
        "http://169.254.169.254.",
        "string",
    ),
    "id_token_file": _field(
        "Id token file",
        "The OIDC or federated id token file, instead of HUAWEICLOUD_OIDC_TOKEN_FILE or "
        "HUAWEICLOUD_SDK_ID_TOKEN_FILE (e.g. a projected service account token on CCE).",
        "string",
    ),
    "credentials_file": _field(
        "Credentials file",
        "The Huawei SDK's credentials file (auth type profile), instead of HUAWEICLOUD_SDK_CREDENTIALS_FILE "
        "or ~/.huaweicloud/credentials.",
        "string",
    ),
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
        "Also retry a sync invocation after a read timeout, broken connection or 5xx (503 included). "
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
        "login": "AK (aksk auth) or IAM user name (password auth); empty for the credential chain",
        "password": "SK (aksk auth) or IAM password (password auth); empty for the credential chain",
        "extra": '{"proxies": {"https": "http://proxy:3128"}, "verify": "/path/to/ca.pem"}',
    },
}


def legacy_form_widgets() -> dict[str, Any]:
    """
    ``CONN_FIELDS`` as the WTForms fields of ``BaseHook.get_connection_form_widgets`` (Airflow 3.1).

    Airflow 3.1 does not read ``conn-fields``; its api-server builds the form from these fields, with
    WTForms and Flask-AppBuilder replaced by stand-ins when they are not installed (they are not
    dependencies of this provider, hence the imports here, called only by that machinery). WTForms has
    no decimal field that 3.1 accepts, so a ``number`` field is a text field whose default is the
    number's text; :func:`airflow_provider_fgs.client.settings.parse_connection` reads both.
    """
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import Optional

    widgets: dict[str, Any] = {}
    for name, spec in CONN_FIELDS.items():
        schema = spec["schema"]
        kind = schema["type"][0]
        default = schema.get("default")
        options: dict[str, Any] = {
            "description": spec["description"],
            "validators": [Optional()],
            "default": default,
        }
        label = lazy_gettext(spec["label"])
        if kind == "boolean":
            widgets[name] = BooleanField(label, **options)
        elif kind == "integer":
            widgets[name] = IntegerField(label, widget=BS3TextFieldWidget(), **options)
        elif schema.get("format") == "password":
            widgets[name] = PasswordField(label, widget=BS3PasswordFieldWidget(), **options)
        else:
            if default is not None:
                options["default"] = str(default)
            widgets[name] = StringField(label, widget=BS3TextFieldWidget(), **options)
    return widgets


def legacy_field_behaviour() -> dict[str, Any]:
    """``UI_FIELD_BEHAVIOUR`` as ``BaseHook.get_ui_field_behaviour`` returns it (Airflow 3.1)."""
    return {
        "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
        "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
        "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
    }
