"""Temporary credentials without a stored secret, as IAM, STS, the ECS metadata service and CCE's pod
identity issue them (PROTOCOL.md section 5c), and the gateway's check of requests signed with them.

Routes (all on the emulator's own port):

* ``POST /v3.0/OS-AUTH/id-token/tokens`` (IAM): a federated id token (any unexpired JWT-shaped token, with
  ``X-Idp-Id``) for an unscoped token in ``X-Subject-Token``;
* ``POST /v3.0/OS-CREDENTIAL/securitytokens`` (IAM): an unscoped token (in the body) for credentials;
* ``POST /v5/agencies/assume-with-oidc`` (STS): an OIDC id token for an agency's credentials;
* ``PUT /meta-data/latest/api/token`` and ``GET /openstack/latest/securitykey`` (ECS metadata): the agency
  bound to the instance (:attr:`CredentialIssuer.instance_agency` off: 401 "Please configure Cloud Service
  Agency first");
* ``POST /pod-identity/v1/credentials`` (a stand-in for CCE pod identity): the pod's credentials for its
  service account token in ``Authorization``.

An expired or malformed id token gets IAM's or STS's 401 body. Credentials live
:attr:`CredentialIssuer.lifetime` seconds; a request signed with them must carry their security token
(``X-Security-Token``), and is refused once they expire.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from airflow_provider_fgs.emulator.iam import IamError, format_time
from airflow_provider_fgs.emulator.responses import json_response, read_body
from airflow_provider_fgs.protocol.temporary_credentials import (
    ASSUME_WITH_OIDC_PATH,
    ID_TOKEN_PATH,
    METADATA_SECURITY_KEY_PATH,
    METADATA_TOKEN_HEADER,
    METADATA_TOKEN_PATH,
    NO_AGENCY,
    SECURITY_TOKENS_PATH,
)

POD_IDENTITY_PATH = "/pod-identity/v1/credentials"
MAX_BODY_BYTES = 64 * 1024
DEFAULT_LIFETIME_S = 3600.0
_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class IssuedKey:
    """Temporary credentials the emulator issued."""

    secret_key: str
    security_token: str
    expires_at: float
    source: str


class CredentialIssuer:
    """
    The temporary credentials issued so far (thread-safe), and how the credential routes behave.

    :param clock: the emulator's clock (epoch seconds).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lifetime = DEFAULT_LIFETIME_S
        self.instance_agency = True
        self.metadata_tokens = True
        self.issued: dict[str, int] = {}
        self._keys: dict[str, IssuedKey] = {}
        self._metadata_tokens: set[str] = set()
        self._lock = threading.Lock()

    def issue(self, source: str, duration: float | None = None) -> tuple[str, IssuedKey]:
        """New credentials for ``source``, living the shorter of ``duration`` and :attr:`lifetime`."""
        lifetime = self.lifetime if duration is None else min(float(duration), self.lifetime)
        access = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(20))
        key = IssuedKey(
            secret_key=secrets.token_urlsafe(30),
            security_token=base64.b64encode(secrets.token_bytes(600)).decode(),
            expires_at=self.clock() + lifetime,
            source=source,
        )
        with self._lock:
            self._keys[access] = key
            self.issued[source] = self.issued.get(source, 0) + 1
        return access, key

    def secret_of(self, access_key: str, security_token: str | None) -> str | None:
        """
        The secret of temporary ``access_key`` when ``security_token`` is its own and it has not expired;
        ``None`` when the key is not a temporary one.

        :raises ValueError: the key is temporary but the token is missing or wrong, or it expired.
        """
        with self._lock:
            key = self._keys.get(access_key)
        if key is None:
            return None
        if not security_token or not secrets.compare_digest(security_token, key.security_token):
            raise ValueError("the security token is missing or does not belong to the access key")
        if self.clock() >= key.expires_at:
            raise ValueError("the temporary access key and its security token expired")
        return key.secret_key

    def new_metadata_token(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._metadata_tokens.add(token)
        return token

    def metadata_token_valid(self, token: str | None) -> bool:
        with self._lock:
            return token in self._metadata_tokens


def id_token_claims(id_token: Any, now: float) -> dict[str, Any]:
    """
    The claims of an unexpired JWT-shaped token (three base64url parts, a JSON payload with ``exp``).

    :raises ValueError: naming what is wrong with it.
    """
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        raise ValueError("the id token is not a JWT (three base64url parts)")
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        raise ValueError("the id token's payload is not base64url JSON") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int | float):
        raise ValueError("the id token has no expiry (exp)")
    if claims["exp"] <= now:
        raise ValueError("the id token expired")
    return claims


def _iam_credential(access: str, key: IssuedKey) -> dict[str, Any]:
    return {
        "credential": {
            "access": access,
            "secret": key.secret_key,
            "securitytoken": key.security_token,
            "expires_at": format_time(key.expires_at),
        }
    }


def _sts_refusal(message: str) -> Response:
    return json_response(401, {"error_code": "STS.0401", "error_msg": message})


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await read_body(request, MAX_BODY_BYTES))
    except (ValueError, UnicodeDecodeError):
        return None


def _dig(data: Any, *path: str) -> Any:
    for name in path:
        data = data.get(name) if isinstance(data, Mapping) else None
    return data


async def id_token(state: Any, request: Request) -> Response:
    """IAM: a federated id token for an unscoped token."""
    issuer: CredentialIssuer = state.credentials
    if not request.headers.get("x-idp-id"):
        return json_response(400, IamError(400, "The X-Idp-Id header is required.").body())
    try:
        claims = id_token_claims(_dig(await _json_body(request), "auth", "id_token", "id"), issuer.clock())
    except ValueError as err:
        return json_response(401, IamError(401, f"The id token is invalid: {err}.").body())
    token, info = state.tokens.issue(
        domain=str(claims.get("iss") or "federated"),
        user=str(claims.get("sub") or "federated-user"),
        project_id="",
        project_name="",
        methods=("mapped",),
    )
    body = {
        "token": {
            "expires_at": format_time(info.expires_at),
            "issued_at": format_time(info.issued_at),
            "methods": ["mapped"],
        }
    }
    return json_response(201, body, {"X-Subject-Token": token})


async def security_tokens(state: Any, request: Request) -> Response:
    """IAM: credentials for an (unscoped) token given in the body."""
    data = await _json_body(request)
    token = _dig(data, "auth", "identity", "token", "id")
    if state.tokens.validate(token if isinstance(token, str) else None) is None:
        return json_response(401, IamError(401, "The token is invalid or expired.").body())
    duration = _dig(data, "auth", "identity", "token", "duration_seconds")
    access, key = state.credentials.issue("federated", duration if isinstance(duration, int) else None)
    return json_response(201, _iam_credential(access, key))


async def assume_with_oidc(state: Any, request: Request) -> Response:
    """STS: an OIDC id token for an agency's credentials."""
    issuer: CredentialIssuer = state.credentials
    data = await _json_body(request)
    if not isinstance(data, dict) or not data.get("provider_urn") or not data.get("agency_urn"):
        return json_response(
            400, {"error_code": "STS.0400", "error_msg": "provider_urn and agency_urn are required"}
        )
    try:
        id_token_claims(data.get("id_token"), issuer.clock())
    except ValueError as err:
        return _sts_refusal(f"Invalid id_token: {err}")
    duration = data.get("duration_seconds")
    access, key = issuer.issue("oidc", duration if isinstance(duration, int) else None)
    credentials = {
        "access_key_id": access,
        "secret_access_key": key.secret_key,
        "security_token": key.security_token,
        "expiration": format_time(key.expires_at),
    }
    return json_response(200, {"credentials": credentials})


async def metadata_token(state: Any, request: Request) -> Response:
    """ECS metadata: a session token (an older service without tokens: 404)."""
    issuer: CredentialIssuer = state.credentials
    if not issuer.metadata_tokens:
        return PlainTextResponse("Not Found", status_code=404)
    return PlainTextResponse(issuer.new_metadata_token())


async def metadata_security_key(state: Any, request: Request) -> Response:
    """ECS metadata: the credentials of the agency bound to the instance."""
    issuer: CredentialIssuer = state.credentials
    if issuer.metadata_tokens and not issuer.metadata_token_valid(
        request.headers.get(METADATA_TOKEN_HEADER.lower())
    ):
        return PlainTextResponse("Unauthorized: the metadata token is missing or invalid", status_code=401)
    if not issuer.instance_agency:
        return PlainTextResponse(f"{NO_AGENCY}.", status_code=401)
    access, key = issuer.issue("metadata")
    return json_response(200, _iam_credential(access, key))


async def pod_identity(state: Any, request: Request) -> Response:
    """CCE pod identity (stand-in): the pod's credentials for its service account token."""
    if not request.headers.get("authorization"):
        return json_response(401, {"error_code": "CCE.0401", "error_msg": "missing Authorization"})
    access, key = state.credentials.issue("pod_identity")
    return json_response(200, _iam_credential(access, key))


ROUTES: dict[str, tuple[str, str, Callable[[Any, Request], Any]]] = {
    ID_TOKEN_PATH: ("POST", "id_token", id_token),
    SECURITY_TOKENS_PATH: ("POST", "security_tokens", security_tokens),
    ASSUME_WITH_OIDC_PATH: ("POST", "assume_with_oidc", assume_with_oidc),
    METADATA_TOKEN_PATH: ("PUT", "metadata_token", metadata_token),
    METADATA_SECURITY_KEY_PATH: ("GET", "metadata_security_key", metadata_security_key),
    POD_IDENTITY_PATH: ("POST", "pod_identity", pod_identity),
}
"""path -> (method, route name, handler)."""
