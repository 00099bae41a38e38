"""IAM token requests and answers (PROTOCOL.md section 1), free of I/O.

Both transports build the request here and parse the answer here (the token is fetched with ``requests``,
in a worker thread when the event loop needs it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_fgs.protocol.errors import AuthenticationError, InvalidRequestError
from airflow_provider_fgs.protocol.http import HttpRequest, lower_headers, platform_error

TOKEN_PATH = "/v3/auth/tokens?nocatalog=true"
TOKEN_HEADER = "X-Subject-Token"
AUTH_TOKEN_HEADER = "X-Auth-Token"
# Used only when IAM omits expires_at, which it documents as always present.
FALLBACK_LIFETIME = timedelta(hours=1)
_REJECTED_STATUS = frozenset({400, 401, 403, 404})


@dataclass(frozen=True)
class IamToken:
    """
    A token issued by IAM.

    :param value: the token itself (``X-Subject-Token``); never part of the repr.
    :param expires_at: when IAM stops accepting it (UTC).
    :param issued_at: when IAM issued it (UTC), when reported.
    :param project_id: the id of the project the token is scoped to, when reported.
    """

    value: str = field(repr=False)
    expires_at: datetime
    issued_at: datetime | None = None
    project_id: str | None = None


def _scope(project_id: str | None, project_name: str | None) -> dict[str, Any]:
    if project_id and project_name:
        raise InvalidRequestError("Scope an IAM token by project_id or by project_name, not both")
    if project_id:
        return {"project": {"id": project_id}}
    if project_name:
        return {"project": {"name": project_name}}
    raise InvalidRequestError("An IAM token needs a project scope: set project_id or project_name")


def _token_request(iam_endpoint: str, auth: dict[str, Any], headers: dict[str, str]) -> HttpRequest:
    return HttpRequest(
        method="POST",
        url=f"{iam_endpoint.rstrip('/')}{TOKEN_PATH}",
        headers={"Content-Type": "application/json;charset=utf8", **headers},
        body=json.dumps({"auth": auth}).encode("utf-8"),
    )


def build_password_token_request(
    iam_endpoint: str,
    *,
    domain_name: str,
    user_name: str,
    password: str,
    project_id: str | None = None,
    project_name: str | None = None,
) -> HttpRequest:
    """
    Build ``POST {iam_endpoint}/v3/auth/tokens?nocatalog=true`` for a password-authenticated user.

    :param domain_name: the account (domain) name the IAM user belongs to.
    :param user_name: the IAM user name.
    :param password: the IAM user's password.
    :param project_id: scope the token to this project id (or give ``project_name``).
    :param project_name: scope the token to this project name, e.g. ``ap-southeast-1``.
    """
    for what, value in (("domain_name", domain_name), ("user name", user_name), ("password", password)):
        if not value:
            raise InvalidRequestError(f"An IAM password token request needs a {what}")
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"domain": {"name": domain_name}, "name": user_name, "password": password}},
        },
        "scope": _scope(project_id, project_name),
    }
    return _token_request(iam_endpoint, auth, {})


def build_assume_role_token_request(
    iam_endpoint: str,
    *,
    caller_token: str,
    domain_name: str,
    agency_name: str,
    project_id: str | None = None,
    project_name: str | None = None,
) -> HttpRequest:
    """
    Build the agency (assume role) token request, authenticated by the caller's own token.

    :param caller_token: the caller's token, sent as ``X-Auth-Token``.
    :param domain_name: the account that created the agency.
    :param agency_name: the agency to assume.
    """
    if not caller_token:
        raise InvalidRequestError("An IAM assume_role request needs the caller's token")
    if not domain_name or not agency_name:
        raise InvalidRequestError("An IAM assume_role request needs agency_domain_name and agency_name")
    auth = {
        "identity": {
            "methods": ["assume_role"],
            "assume_role": {"domain_name": domain_name, "agency_name": agency_name},
        },
        "scope": _scope(project_id, project_name),
    }
    return _token_request(iam_endpoint, auth, {AUTH_TOKEN_HEADER: caller_token})


def parse_timestamp(value: Any) -> datetime | None:
    """Parse an IAM timestamp such as ``2020-01-04T09:05:22.701000Z`` to an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse_token_response(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    who: str = "the configured credentials",
    now: datetime | None = None,
) -> IamToken:
    """
    Parse IAM's answer to a token request (``201`` with the token in ``X-Subject-Token``).

    :param who: a description of the principal for error messages, never a secret.
    :raises AuthenticationError: IAM rejected the credentials (400/401/403/404) or sent no token.
    :raises ThrottledError: IAM throttled the request.
    :raises ServiceUnavailableError: IAM failed transiently.
    """
    if status_code >= 300:
        error = platform_error(status_code, headers, body, what=f"an IAM token for {who}")
        if status_code in _REJECTED_STATUS:
            code = error.error_code if error.error_code != str(status_code) else None  # Keystone repeats it
            message = f"IAM rejected {who}: HTTP {status_code}"
            message += (f" {code}" if code else "") + (f": {error.error_msg}" if error.error_msg else "")
            if error.request_id:
                message += f" (request id {error.request_id})"
            raise AuthenticationError(
                message,
                http_status=status_code,
                error_code=error.error_code,
                error_msg=error.error_msg,
                request_id=error.request_id,
            )
        raise error
    token_value = lower_headers(headers).get(TOKEN_HEADER.lower(), "").strip()
    if not token_value:
        raise AuthenticationError(
            f"IAM answered the token request for {who} with HTTP {status_code} but no {TOKEN_HEADER} header",
            http_status=status_code,
        )
    try:
        data = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        data = {}
    token_info = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token_info, dict):
        token_info = {}
    issued_at = parse_timestamp(token_info.get("issued_at"))
    expires_at = parse_timestamp(token_info.get("expires_at"))
    if expires_at is None:
        expires_at = (now or datetime.now(UTC)) + FALLBACK_LIFETIME
    project = token_info.get("project")
    project_id = project.get("id") if isinstance(project, dict) else None
    return IamToken(
        value=token_value,
        expires_at=expires_at,
        issued_at=issued_at,
        project_id=str(project_id) if project_id else None,
    )
