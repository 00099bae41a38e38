"""IAM token service: ``POST /v3/auth/tokens`` (password and assume_role), expiry and revocation."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from airflow_provider_fgs.emulator.lockout import Lockouts

# Real tokens are several KB; a long opaque value keeps clients honest about header sizes.
_TOKEN_BYTES = 1536


@dataclass(frozen=True)
class TokenInfo:
    """What a token stands for."""

    domain: str
    user: str
    project_id: str
    project_name: str
    methods: tuple[str, ...]
    issued_at: float
    expires_at: float

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) >= self.expires_at


def format_time(epoch: float) -> str:
    """Keystone time format: ``2020-01-04T09:05:22.701000Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _id_of(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


class TokenStore:
    """
    Issued tokens (thread-safe).

    :param ttl: token lifetime in seconds.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._tokens: dict[str, TokenInfo] = {}
        self._lock = threading.Lock()

    def issue(
        self, *, domain: str, user: str, project_id: str, project_name: str, methods: tuple[str, ...]
    ) -> tuple[str, TokenInfo]:
        now = time.time()
        token = "MII" + base64.urlsafe_b64encode(secrets.token_bytes(_TOKEN_BYTES)).decode().rstrip("=")
        info = TokenInfo(domain, user, project_id, project_name, methods, now, now + self.ttl)
        with self._lock:
            self._tokens = {k: v for k, v in self._tokens.items() if not v.expired(now)}
            self._tokens[token] = info
        return token, info

    def validate(self, token: str | None) -> TokenInfo | None:
        """The token's info when it is known and unexpired, else ``None``."""
        if not token:
            return None
        with self._lock:
            info = self._tokens.get(token)
        if info is None or info.expired():
            return None
        return info

    def revoke(self, token: str | None = None) -> None:
        """Revoke one token, or all of them."""
        with self._lock:
            if token is None:
                self._tokens.clear()
            else:
                self._tokens.pop(token, None)


class IamError(Exception):
    """A Keystone-style refusal: ``{"error": {"code", "message", "title"}}``."""

    TITLES: ClassVar[dict[int, str]] = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
    }

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "error": {"code": self.status, "message": self.message, "title": self.TITLES.get(self.status, "")}
        }


@dataclass(frozen=True)
class IamSettings:
    """The identities IAM knows."""

    users: Mapping[str, Mapping[str, str]]
    project_id: str
    project_name: str
    domain_id_seed: str = "emulator"


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise IamError(400, f"The request body is invalid: {where} must be an object")
    return value


def _scope(settings: IamSettings, body: dict[str, Any]) -> None:
    scope = body.get("scope")
    if scope is None:
        return
    project = _obj(_obj(scope, "auth.scope").get("project"), "auth.scope.project")
    has_id, has_name = "id" in project, "name" in project
    if has_id == has_name:
        raise IamError(400, "The request body is invalid: give the project id or the project name, not both")
    if has_id and project["id"] != settings.project_id:
        raise IamError(401, f"The user has no access to project {project['id']!r}")
    if has_name and project["name"] != settings.project_name:
        raise IamError(401, f"The user has no access to project {project['name']!r}")


def issue_token(
    store: TokenStore,
    settings: IamSettings,
    body: Any,
    caller_token: str | None,
    lockouts: Lockouts | None = None,
) -> tuple[str, dict[str, Any]]:
    """
    Handle a token request body; returns (token, response body).

    :param lockouts: IAM's lock of a user after repeated wrong passwords.
    :raises IamError: bad body (400), bad credentials or scope, or a locked user (401).
    """
    auth = _obj(_obj(body, "the body").get("auth"), "auth")
    identity = _obj(auth.get("identity"), "auth.identity")
    methods = identity.get("methods")
    assumed_by: TokenInfo | None = None  # the caller of an assume_role request
    if methods == ["password"]:
        user = _obj(_obj(identity.get("password"), "identity.password").get("user"), "password.user")
        domain = _obj(user.get("domain"), "password.user.domain").get("name")
        name, password = user.get("name"), user.get("password")
        if not all(isinstance(v, str) for v in (domain, name, password)):
            raise IamError(
                400, "The request body is invalid: domain name, user name and password are required"
            )
        known = settings.users.get(str(domain), {}).get(str(name))
        if lockouts is not None and lockouts.user_locked(str(domain), str(name)):
            raise IamError(401, "The account is locked. Try again later.")
        if known is None or not secrets.compare_digest(known.encode(), str(password).encode()):
            if lockouts is not None and known is not None:
                lockouts.password_failed(str(domain), str(name))
            raise IamError(401, "The username or password is wrong.")
        _scope(settings, auth)
        domain_name, user_name = str(domain), str(name)
    elif methods == ["assume_role"]:
        caller = store.validate(caller_token)
        if caller is None:
            raise IamError(401, "The request you have made requires authentication.")
        assumed_by = caller
        role = _obj(identity.get("assume_role"), "identity.assume_role")
        agency, agency_domain = role.get("agency_name"), role.get("domain_name", role.get("domain_id"))
        if not (isinstance(agency, str) and agency and isinstance(agency_domain, str) and agency_domain):
            raise IamError(400, "The request body is invalid: agency_name and domain_name are required")
        _scope(settings, auth)
        domain_name, user_name = agency_domain, f"{agency_domain}/{agency}"
    else:
        raise IamError(400, f"The request body is invalid: unsupported methods {methods!r}")
    token, info = store.issue(
        domain=domain_name,
        user=user_name,
        project_id=settings.project_id,
        project_name=settings.project_name,
        methods=tuple(methods),
    )
    domain_ref = _domain_ref(settings, domain_name)
    token_body: dict[str, Any] = {
        "methods": list(methods),
        "expires_at": format_time(info.expires_at),
        "issued_at": format_time(info.issued_at),
        "user": _user_ref(settings, domain_name, user_name, has_password=methods == ["password"]),
        "project": {"id": settings.project_id, "name": settings.project_name, "domain": domain_ref},
        "roles": [{"id": _id_of("role", "te_admin"), "name": "te_admin"}],
        "catalog": [],
    }
    if assumed_by is not None:
        # The delegated party, as in IAM's agency token (AgencyTokenResult.assumed_by).
        token_body["assumed_by"] = {"user": _user_ref(settings, assumed_by.domain, assumed_by.user)}
    return token, {"token": token_body}


def _domain_ref(settings: IamSettings, domain_name: str) -> dict[str, str]:
    return {"id": _id_of(settings.domain_id_seed, domain_name), "name": domain_name}


def _user_ref(
    settings: IamSettings, domain_name: str, user_name: str, *, has_password: bool = True
) -> dict[str, Any]:
    """
    A token's user; a user with a password has ``password_expires_at`` (``""``: it never expires),
    an agency (the user of an agency token) has none.
    """
    user: dict[str, Any] = {"id": _id_of(domain_name, user_name), "name": user_name}
    if has_password:
        user["password_expires_at"] = ""
    user["domain"] = _domain_ref(settings, domain_name)
    return user
