"""Temporary credentials without a stored secret (PROTOCOL.md section 5c): the requests of each source and
their answers, pure and I/O-free, as huaweicloudsdkcore's own providers make and read them.

Temporary credentials are an AK, an SK and a security token: requests are signed with the AK/SK and carry
``X-Security-Token``. They come from IAM (a federated id token exchanged for an unscoped token, then for
credentials), from STS (an OIDC id token assuming an agency), from the ECS metadata service (the agency
bound to the instance) or from CCE's pod identity endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_fgs.protocol.errors import AuthenticationError, FunctionGraphApiError
from airflow_provider_fgs.protocol.http import HttpRequest, lower_headers, platform_error, request_id_of

JSON_UTF8 = {"Content-Type": "application/json;charset=UTF-8"}
ID_TOKEN_PATH = "/v3.0/OS-AUTH/id-token/tokens"
SECURITY_TOKENS_PATH = "/v3.0/OS-CREDENTIAL/securitytokens"
ASSUME_WITH_OIDC_PATH = "/v5/agencies/assume-with-oidc"
METADATA_TOKEN_PATH = "/meta-data/latest/api/token"
METADATA_SECURITY_KEY_PATH = "/openstack/latest/securitykey"
METADATA_TOKEN_HEADER = "X-Metadata-Token"
METADATA_TOKEN_TTL_HEADER = "X-Metadata-Token-Ttl-Seconds"
METADATA_TOKEN_TTL_S = 6 * 3600
FEDERATED_DURATION_S = 6 * 3600
OIDC_DURATION_S = 3600
NO_AGENCY = "Please configure Cloud Service Agency first"
"""What the metadata service answers (401) on an instance with no agency bound to it."""


@dataclass(frozen=True)
class TemporaryCredentials:
    """
    An AK/SK with its security token, and when it expires.

    :param access_key: the temporary AK.
    :param secret_key: the temporary SK.
    :param security_token: the security token sent with every signed request.
    :param expires_at: when they expire (UTC).
    :param source: where they came from, for messages (never a secret).
    """

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str = field(repr=False)
    expires_at: datetime
    source: str = ""

    def secrets(self) -> tuple[str, ...]:
        """The values to mask in logs."""
        return (self.secret_key, self.security_token)

    def refresh_at(self, *, margin: timedelta, fraction: float, now: datetime) -> datetime:
        """When to replace them: ``margin`` before they expire, at most ``fraction`` of their lifetime."""
        lifetime = max(self.expires_at - now, timedelta(0))
        return self.expires_at - min(margin, lifetime * fraction)

    def to_record(self) -> dict[str, Any]:
        """A JSON record for the host cache."""
        return {
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "security_token": self.security_token,
            "expires_at": self.expires_at.isoformat(),
            "source": self.source,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TemporaryCredentials | None:
        """The credentials of a host cache record, ``None`` when it is not one."""
        try:
            expires_at = datetime.fromisoformat(str(record["expires_at"]))
            values = [record["access_key"], record["secret_key"], record["security_token"]]
        except (KeyError, TypeError, ValueError):
            return None
        if expires_at.tzinfo is None or not all(isinstance(value, str) and value for value in values):
            return None
        access_key, secret_key, security_token = values
        return cls(access_key, secret_key, security_token, expires_at, str(record.get("source") or ""))


def id_token_request(iam_endpoint: str, idp_id: str, id_token: str) -> HttpRequest:
    """IAM: exchange a federated id token for an unscoped token (its ``X-Subject-Token`` header)."""
    body = {"auth": {"id_token": {"id": id_token}}}
    return HttpRequest(
        "POST", f"{iam_endpoint.rstrip('/')}{ID_TOKEN_PATH}", {**JSON_UTF8, "X-Idp-Id": idp_id}, _json(body)
    )


def unscoped_token(status: int, headers: Mapping[str, str], body: bytes, *, source: str) -> str:
    """The unscoped token of IAM's answer to :func:`id_token_request`."""
    _refused(status, headers, body, source=source, what="the id token exchange")
    token = lower_headers(headers).get("x-subject-token")
    if not token:
        raise FunctionGraphApiError(f"IAM answered {source}'s id token exchange with no X-Subject-Token")
    return token


def security_tokens_request(
    iam_endpoint: str, token: str, duration_seconds: int = FEDERATED_DURATION_S
) -> HttpRequest:
    """IAM: temporary credentials for a token (the token goes in the body, not in ``X-Auth-Token``)."""
    body = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": token, "duration_seconds": duration_seconds}}
        }
    }
    return HttpRequest(
        "POST", f"{iam_endpoint.rstrip('/')}{SECURITY_TOKENS_PATH}", dict(JSON_UTF8), _json(body)
    )


def assume_with_oidc_request(
    sts_endpoint: str,
    *,
    provider_urn: str,
    agency_urn: str,
    id_token: str,
    session_name: str,
    duration_seconds: int = OIDC_DURATION_S,
    policy: str | None = None,
    policy_ids: list[str] | None = None,
) -> HttpRequest:
    """STS: assume an agency with an OIDC id token (unsigned)."""
    body: dict[str, Any] = {
        "provider_urn": provider_urn,
        "agency_urn": agency_urn,
        "agency_session_name": session_name,
        "id_token": id_token,
        "duration_seconds": duration_seconds,
    }
    if policy:
        body["policy"] = policy
    if policy_ids:
        body["policy_ids"] = policy_ids
    return HttpRequest(
        "POST", f"{sts_endpoint.rstrip('/')}{ASSUME_WITH_OIDC_PATH}", dict(JSON_UTF8), _json(body)
    )


def metadata_token_request(metadata_endpoint: str) -> HttpRequest:
    """The ECS metadata service's session token (an older service answers 404, 405 or 503: go on without)."""
    headers = {METADATA_TOKEN_TTL_HEADER: str(METADATA_TOKEN_TTL_S)}
    return HttpRequest("PUT", f"{metadata_endpoint.rstrip('/')}{METADATA_TOKEN_PATH}", headers)


def metadata_security_key_request(metadata_endpoint: str, session_token: str | None) -> HttpRequest:
    """The temporary credentials of the agency bound to the instance."""
    headers = {METADATA_TOKEN_HEADER: session_token} if session_token else {}
    return HttpRequest("GET", f"{metadata_endpoint.rstrip('/')}{METADATA_SECURITY_KEY_PATH}", headers)


def pod_identity_request(uri: str, authorization: str) -> HttpRequest:
    """CCE pod identity: the pod's temporary credentials, its service account token as ``Authorization``."""
    return HttpRequest(
        "POST", uri, {"Content-Type": "application/json", "Authorization": authorization}, b"{}"
    )


def parse_credentials(
    status: int, headers: Mapping[str, str], body: bytes, *, source: str
) -> TemporaryCredentials:
    """
    The temporary credentials of an answer: ``{"credential": {...}}`` or ``{"credentials": {...}}`` (or the
    object itself), with IAM's names (``access``, ``secret``, ``securitytoken``, ``expires_at``) or STS's
    (``access_key_id``, ``secret_access_key``, ``security_token``, ``expiration``).

    :raises AuthenticationError: the source refused (401, 403), naming it.
    :raises FunctionGraphApiError: another refusal, or an answer without credentials.
    """
    _refused(status, headers, body, source=source, what="the credentials request")
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        data = data.get("credential") or data.get("credentials") or data
    if not isinstance(data, dict):
        raise FunctionGraphApiError(f"{source} answered with no credentials (HTTP {status})")
    access = _first(data, "access", "accessKeyId", "access_key_id")
    secret = _first(data, "secret", "secretAccessKey", "secret_access_key")
    token = _first(data, "securitytoken", "securityToken", "security_token")
    expires = _first(data, "expires_at", "expiration")
    if not (access and secret and token and expires):
        missing = [
            name
            for name, value in (
                ("access", access),
                ("secret", secret),
                ("security token", token),
                ("expiry", expires),
            )
            if not value
        ]
        raise FunctionGraphApiError(f"{source} answered credentials without {', '.join(missing)}")
    return TemporaryCredentials(access, secret, token, expires_at=parse_expiry(expires), source=source)


def parse_expiry(value: str) -> datetime:
    """``2026-12-07T06:00:00.000000Z`` (or any ISO 8601 time; no zone means UTC)."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FunctionGraphApiError(f"Unreadable credentials expiry {value!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _first(data: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _refused(status: int, headers: Mapping[str, str], body: bytes, *, source: str, what: str) -> None:
    if status < 400:
        return
    error = platform_error(status, headers, body, what=f"{what} of {source}")
    if status in (401, 403):
        raise AuthenticationError(
            f"{error} ({source} was refused: check the id token, the agency or the instance's agency)",
            http_status=status,
            error_code=error.error_code,
            error_msg=error.error_msg,
            request_id=request_id_of(lower_headers(headers)),
        )
    raise error


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")
