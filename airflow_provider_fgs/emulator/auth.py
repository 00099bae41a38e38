"""Authentication of FunctionGraph routes: an IAM token, or an SDK-HMAC-SHA256 signature."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from airflow_provider_fgs.emulator.credentials_api import CredentialIssuer
from airflow_provider_fgs.emulator.iam import TokenInfo, TokenStore
from airflow_provider_fgs.protocol.signing import (
    DATE_FORMAT,
    compute_signature,
    parse_authorization,
    query_pairs,
)

MAX_CLOCK_SKEW_SECONDS = 15 * 60


class AuthFailure(Exception):
    """The request is not authenticated; the message says why (never echoing a secret)."""


def authenticate(
    *,
    tokens: TokenStore,
    access_keys: Mapping[str, str],
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    temporary: CredentialIssuer | None = None,
    now: datetime | None = None,
) -> TokenInfo | str:
    """
    Check a request's credentials.

    :param headers: request headers with lower-cased names, values as received (``host`` included).
    :param temporary: the temporary credentials issued, whose signatures need their ``X-Security-Token``.
    :return: the token's info for token auth, or the access key for a valid signature.
    :raises AuthFailure: no credentials, unknown/expired/revoked token, bad or stale signature.
    """
    token = headers.get("x-auth-token")
    if token:
        info = tokens.validate(token)
        if info is None:
            raise AuthFailure("Incorrect IAM authentication information: token expired, revoked or unknown")
        return info
    authorization = headers.get("authorization")
    if not authorization:
        raise AuthFailure("Incorrect IAM authentication information: no X-Auth-Token or Authorization header")
    parsed = parse_authorization(authorization)
    if parsed is None:
        raise AuthFailure("Incorrect IAM authentication information: unsupported Authorization header")
    secret = access_keys.get(parsed.access_key)
    if secret is None and temporary is not None:
        try:
            secret = temporary.secret_of(parsed.access_key, headers.get("x-security-token"))
        except ValueError as err:
            raise AuthFailure(f"Incorrect IAM authentication information: {err}") from None
    if secret is None:
        raise AuthFailure("Incorrect IAM authentication information: unknown access key")
    sdk_date = headers.get("x-sdk-date", "")
    try:
        signed_at = datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise AuthFailure("Incorrect IAM authentication information: missing or bad X-Sdk-Date") from None
    if abs(((now or datetime.now(UTC)) - signed_at).total_seconds()) > MAX_CLOCK_SKEW_SECONDS:
        raise AuthFailure("Incorrect IAM authentication information: X-Sdk-Date is more than 15 minutes off")
    missing = [name for name in parsed.signed_headers if name not in headers]
    if missing:
        raise AuthFailure(f"Incorrect IAM authentication information: signed headers {missing} not sent")
    expected = compute_signature(
        method=method,
        path=raw_path,
        query=query_pairs(query_string),
        headers=headers,
        signed_headers=parsed.signed_headers,
        body=body,
        sdk_date=sdk_date,
        secret_key=secret,
    )
    if not hmac.compare_digest(expected, parsed.signature):
        raise AuthFailure("Incorrect IAM authentication information: verify aksk signature fail")
    return parsed.access_key
