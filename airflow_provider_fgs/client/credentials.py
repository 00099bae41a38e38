"""How a connection's credentials authenticate a request: an AK/SK signature (a stored pair, or temporary
credentials from the credential chain) or an IAM token."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from airflow_provider_fgs.client.settings import FunctionGraphSettings
from airflow_provider_fgs.protocol.errors import AuthenticationError
from airflow_provider_fgs.protocol.http import HttpRequest
from airflow_provider_fgs.protocol.iam import AUTH_TOKEN_HEADER
from airflow_provider_fgs.protocol.signing import Signer
from airflow_provider_fgs.protocol.temporary_credentials import TemporaryCredentials


def uses_fetched_tokens(settings: FunctionGraphSettings) -> bool:
    """Whether this connection obtains tokens from IAM (and so can refresh one after a 401)."""
    return settings.auth_type == "password"


def authenticate(
    request: HttpRequest,
    settings: FunctionGraphSettings,
    *,
    token: str | None = None,
    credentials: TemporaryCredentials | None = None,
    now: datetime | None = None,
) -> HttpRequest:
    """
    ``request`` with its authentication headers.

    AK/SK connections are signed (``Host``, ``X-Sdk-Date``, optional ``X-Security-Token``,
    ``Authorization``), and so is a request with temporary ``credentials``; token connections get
    ``X-Auth-Token: token``.
    """
    if credentials is not None:
        signer = Signer(credentials.access_key, credentials.secret_key, credentials.security_token or None)
        headers = signer.sign(request.method, request.url, request.headers, request.body, now=now)
        return replace(request, headers=headers)
    if settings.auth_type == "aksk":
        signer = Signer(settings.access_key or "", settings.secret_key or "", settings.security_token)
        headers = signer.sign(request.method, request.url, request.headers, request.body, now=now)
        return replace(request, headers=headers)
    if not token:
        raise AuthenticationError(f"No token available for {settings.principal}")
    return replace(request, headers={**request.headers, AUTH_TOKEN_HEADER: token})


def mask_secret(value: str) -> None:
    """Register ``value`` with Airflow's secret masker, so no log line or rendered field shows it."""
    from airflow.sdk.log import mask_secret as airflow_mask_secret

    airflow_mask_secret(value)
