"""Typed settings of a ``functiongraph`` Airflow connection.

Pure parsing, no I/O and no Airflow import: the sync hook and the deferrable triggers read the same
settings. Secrets are kept out of ``repr`` and out of every error message.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from airflow_provider_fgs import __version__
from airflow_provider_fgs.client.profile_file import profile_path, read_profile
from airflow_provider_fgs.protocol.errors import AuthenticationError, InvalidRequestError

AuthType = Literal["aksk", "password", "token", "chain", "oidc", "env", "profile", "metadata", "pod_identity"]
CREDENTIAL_SOURCES: tuple[str, ...] = ("oidc", "env", "profile", "metadata", "pod_identity")
"""The sources of the Huawei SDK's credential chain, in its order (temporary credentials, nothing stored)."""
CHAIN = "chain"
AUTH_TYPES: tuple[str, ...] = ("aksk", "password", "token", CHAIN, *CREDENTIAL_SOURCES)

USER_AGENT = f"airflow-provider-fgs/{__version__}"
DEFAULT_ENDPOINT = "https://functiongraph.{region}.myhuaweicloud.com"
DEFAULT_IAM_ENDPOINT = "https://iam.{region}.myhuaweicloud.com"
DEFAULT_STS_ENDPOINT = "https://sts.{region}.myhuaweicloud.com"
DEFAULT_METADATA_ENDPOINT = "http://169.254.169.254"
# The Huawei SDK's environment variables that name a region and a project when the connection does not.
REGION_ENV = "HUAWEICLOUD_SDK_REGION"
PROJECT_ID_ENV = "HUAWEICLOUD_SDK_PROJECT_ID"
DEFAULT_CONNECT_TIMEOUT = 10.0
# Above the ~90 s after which the gateway cuts a sync response, so the platform answers first.
DEFAULT_READ_TIMEOUT = 120.0
DEFAULT_RETRY_ATTEMPTS = 4
DEFAULT_RETRY_MIN_WAIT = 0.5
DEFAULT_RETRY_MAX_WAIT = 20.0
DEFAULT_RETRY_AFTER_CAP = 60.0
# The API gateway locks an AK/SK for 5 minutes after 5 failed signatures.
DEFAULT_CREDENTIAL_COOLDOWN = 300.0

# Extra keys that hold secrets: registered with the secret masker and never shown.
SECRET_EXTRAS = ("security_token", "token")
KNOWN_EXTRAS = frozenset(
    {
        "region",
        "project_id",
        "project_name",
        "domain_name",
        "auth_type",
        "security_token",
        "token",
        "endpoint",
        "iam_endpoint",
        "verify",
        "proxies",
        "connect_timeout",
        "read_timeout",
        "retry_attempts",
        "retry_min_wait",
        "retry_max_wait",
        "retry_after_cap",
        "retry_sync_invoke",
        "agency_name",
        "agency_domain_name",
        "host_cache",
        "host_cache_dir",
        "credential_cooldown",
        "sts_endpoint",
        "metadata_endpoint",
        "id_token_file",
        "credentials_file",
    }
)


class ConnectionLike(Protocol):
    """What is read from an Airflow ``Connection`` (the SDK one, or any object with these fields)."""

    conn_id: str
    host: str | None
    port: int | None
    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RetrySettings:
    """
    Retry policy knobs.

    :param attempts: retries after the first attempt (0 disables retries).
    :param min_wait: first backoff in seconds (doubles each retry, with jitter).
    :param max_wait: cap of one backoff in seconds.
    :param retry_after_cap: cap of a server's ``Retry-After`` in seconds.
    :param retry_sync_invoke: also retry a sync invocation after it may have reached the function.
    """

    attempts: int = DEFAULT_RETRY_ATTEMPTS
    min_wait: float = DEFAULT_RETRY_MIN_WAIT
    max_wait: float = DEFAULT_RETRY_MAX_WAIT
    retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP
    retry_sync_invoke: bool = False


@dataclass(frozen=True)
class FunctionGraphSettings:
    """
    Everything a transport needs to call FunctionGraph for one connection.

    :param conn_id: the Airflow connection id (for messages).
    :param auth_type: ``aksk``, ``password``, ``token``; ``chain`` (the Huawei SDK's credential chain), or
        one of its sources (:data:`CREDENTIAL_SOURCES`).
    :param region: region id, e.g. ``ap-southeast-1``.
    :param project_id: project id; may be ``None`` in password mode with ``project_name``
        (then it is learnt from the token).
    :param project_name: project name used to scope a password token.
    :param endpoint: FunctionGraph base URL.
    :param iam_endpoint: IAM base URL.
    :param iam_endpoint_set: whether the connection sets ``iam_endpoint`` (else a source's own setting,
        e.g. ``HUAWEICLOUD_SDK_IAM_ENDPOINT``, comes first).
    :param sts_endpoint: STS base URL for OIDC agencies (``None``: ``HUAWEICLOUD_SDK_STS_ENDPOINT``, else the
        region's).
    :param metadata_endpoint: the ECS metadata service.
    :param id_token_file: the id token file of the OIDC and federated sources, instead of their variable.
    :param credentials_file: the profile source's file, instead of ``HUAWEICLOUD_SDK_CREDENTIALS_FILE``.
    :param access_key: AK (aksk mode).
    :param secret_key: SK (aksk mode).
    :param security_token: security token of temporary AK/SK credentials.
    :param domain_name: account (domain) name (password mode).
    :param user_name: IAM user name (password mode).
    :param password: IAM password (password mode).
    :param token: a pre-issued token (token mode).
    :param agency_name: assume this agency with the password token (optional).
    :param agency_domain_name: account owning the agency (defaults to ``domain_name``).
    :param verify: TLS verification: ``True``, ``False`` or a CA bundle path.
    :param proxies: ``requests``-style proxies by scheme.
    :param connect_timeout: seconds to establish a connection.
    :param read_timeout: seconds to wait for response data.
    :param read_timeout_set: whether the connection sets ``read_timeout`` (else a sync invocation waits
        as long as its function's own timeout allows).
    :param retry: the retry policy.
    :param host_cache: share tokens and cool-downs with the host's other processes (``None``: the
        Airflow configuration decides, default on).
    :param host_cache_dir: the directory of that cache (``None``: configuration or default).
    :param credential_cooldown: seconds during which credentials just rejected are not sent again
        (``0`` turns the cool-down off).
    """

    conn_id: str
    auth_type: AuthType
    region: str
    project_id: str | None
    endpoint: str
    iam_endpoint: str
    project_name: str | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    domain_name: str | None = None
    user_name: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    agency_name: str | None = None
    agency_domain_name: str | None = None
    verify: bool | str = True
    proxies: dict[str, str] = field(default_factory=dict)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    read_timeout_set: bool = False
    retry: RetrySettings = field(default_factory=RetrySettings)
    host_cache: bool | None = None
    host_cache_dir: str | None = None
    credential_cooldown: float = DEFAULT_CREDENTIAL_COOLDOWN
    iam_endpoint_set: bool = False
    sts_endpoint: str | None = None
    metadata_endpoint: str = DEFAULT_METADATA_ENDPOINT
    id_token_file: str | None = None
    credentials_file: str | None = None

    @property
    def uses_credential_sources(self) -> bool:
        """Whether requests are signed with temporary credentials from the SDK's chain (or one source)."""
        return self.auth_type == CHAIN or self.auth_type in CREDENTIAL_SOURCES

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret values of this connection, for the secret masker."""
        values = (self.secret_key, self.security_token, self.password, self.token)
        return tuple(value for value in values if value)

    @property
    def timeouts(self) -> tuple[float, float]:
        """``(connect, read)`` timeouts."""
        return self.connect_timeout, self.read_timeout

    @property
    def principal(self) -> str:
        """Who authenticates and through which connection, for messages (never a secret)."""
        if self.auth_type == "aksk":
            return f"access key {self.access_key} (connection {self.conn_id!r})"
        if self.auth_type == "password":
            who = f"IAM user {self.user_name!r} of domain {self.domain_name!r}"
            who += f", agency {self.agency_name!r}" if self.agency_name else ""
            return f"{who} (connection {self.conn_id!r})"
        if self.uses_credential_sources:
            source = (
                "the Huawei SDK's credential chain"
                if self.auth_type == CHAIN
                else f"source {self.auth_type!r}"
            )
            return f"temporary credentials from {source} (connection {self.conn_id!r})"
        return f"the pre-issued token of connection {self.conn_id!r}"

    @property
    def token_cache_key(self) -> str:
        """
        Identity of the credentials for the process-wide token cache.

        Hooks of the same connection share a token; a changed password or scope gives a new key.
        Secrets enter only through a hash.
        """
        parts = [
            self.auth_type,
            self.iam_endpoint,
            self.domain_name or "",
            self.user_name or "",
            self.project_id or "",
            self.project_name or "",
            self.agency_domain_name or "",
            self.agency_name or "",
            hashlib.sha256((self.password or self.token or "").encode()).hexdigest(),
        ]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    @property
    def credential_key(self) -> str | None:
        """
        Identity of the credentials that IAM or the API gateway may lock (``None`` for a pre-issued
        token): the AK/SK pair at the endpoint, or the IAM user and password at IAM. A changed secret
        gives a new key. Secrets enter only through a hash.
        """
        if self.auth_type == "aksk":
            parts = [self.auth_type, self.endpoint, self.access_key or "", self.secret_key or ""]
            parts.append(self.security_token or "")
        elif self.auth_type == "password":
            parts = [self.auth_type, self.iam_endpoint, self.domain_name or "", self.user_name or ""]
            parts.append(self.password or "")
        elif self.uses_credential_sources:
            # Where the credentials come from: the source and what points at it (no secret).
            parts = [self.auth_type, self.iam_endpoint, self.sts_endpoint or "", self.metadata_endpoint]
            parts += [self.id_token_file or "", self.credentials_file or "", *_source_environment()]
        else:
            return None
        hashed = [hashlib.sha256(part.encode()).hexdigest() for part in parts]
        return hashlib.sha256("\x00".join(hashed).encode()).hexdigest()


def _sourced_project_id(auth_type: str, credentials_file: str | None) -> str | None:
    """Where the Huawei SDK finds the project of sourced credentials: its variable, else the profile's."""
    from_environment = _text(os.environ.get(PROJECT_ID_ENV))
    if from_environment or auth_type not in (CHAIN, "profile"):
        return from_environment
    try:
        profile = read_profile(profile_path(credentials_file))
    except AuthenticationError:
        return None  # the profile source names the unreadable file when it is reached
    return profile.get("project_id") if profile else None


def _source_environment() -> list[str]:
    """What of the environment names a credential source (a changed setup gives another identity)."""
    names = (
        "HUAWEICLOUD_OIDC_PROVIDER_URN",
        "HUAWEICLOUD_OIDC_AGENCY_URN",
        "HUAWEICLOUD_OIDC_TOKEN_FILE",
        "HUAWEICLOUD_SDK_AK",
        "HUAWEICLOUD_SDK_IDP_ID",
        "HUAWEICLOUD_SDK_ID_TOKEN_FILE",
        "HUAWEICLOUD_SDK_CREDENTIALS_FILE",
        "HC_CONTAINER_CREDENTIALS_FULL_URI",
    )
    return [os.environ.get(name, "") for name in names]


def _bad(conn_id: str, name: str, problem: str) -> InvalidRequestError:
    return InvalidRequestError(f"FunctionGraph connection {conn_id!r}: {name} {problem}")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _bool(conn_id: str, name: str, value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise _bad(conn_id, f"extra {name!r}", f"must be true or false, got {value!r}")


def _number(conn_id: str, name: str, value: Any, default: float, *, minimum: float = 0.0) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(conn_id, f"extra {name!r}", f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or number < minimum or number != number:
        raise _bad(conn_id, f"extra {name!r}", f"must be a number >= {minimum:g}, got {value!r}")
    return number


def _verify(conn_id: str, value: Any) -> bool | str:
    if isinstance(value, str) and value.strip().lower() not in (
        "",
        "true",
        "false",
        "1",
        "0",
        "yes",
        "no",
        "on",
        "off",
    ):
        return value.strip()  # a CA bundle path
    return _bool(conn_id, "verify", value, True)


def _proxies(conn_id: str, value: Any) -> dict[str, str]:
    if value is None or value == "" or value == {}:
        return {}
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                raise _bad(conn_id, "extra 'proxies'", "is not valid JSON") from None
        else:
            return {"http": text, "https": text}
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    raise _bad(
        conn_id, "extra 'proxies'", 'must be a proxy URL or an object like {"https": "http://proxy:3128"}'
    )


def _url(conn_id: str, name: str, value: str) -> str:
    if "://" not in value:
        value = f"https://{value}"
    if not value.startswith(("http://", "https://")):
        raise _bad(conn_id, name, f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _host_endpoint(conn: ConnectionLike) -> str | None:
    host = _text(conn.host)
    if host is None:
        return None
    port = getattr(conn, "port", None)
    return f"{host.rstrip('/')}:{port}" if port and host.count(":") < (2 if "://" in host else 1) else host


def _infer_auth_type(extras: Mapping[str, Any], login: str | None, password: str | None) -> str:
    if _text(extras.get("token")):
        return "token"
    if _text(extras.get("domain_name")):
        return "password"
    if login and password:
        return "aksk"
    if login or password:
        return "aksk"  # half an AK/SK pair: refused below, naming the missing half
    return CHAIN  # no stored secret: the Huawei SDK's credential chain, as its own clients read it


def parse_connection(conn: ConnectionLike) -> FunctionGraphSettings:
    """
    Parse an Airflow connection of type ``functiongraph`` into :class:`FunctionGraphSettings`.

    ``login``/``password`` are the AK/SK (``aksk``) or the IAM user name/password (``password``); the
    rest comes from the extras (see the README). ``host``, when set and ``endpoint`` is not, is the
    FunctionGraph endpoint.

    :raises InvalidRequestError: naming the missing or bad field.
    """
    conn_id = conn.conn_id or "<unnamed>"
    extras = conn.extra_dejson or {}
    if not isinstance(extras, Mapping):
        raise _bad(conn_id, "extra", "must be a JSON object")
    login = _text(conn.login)
    password = conn.password or None

    auth_type = (_text(extras.get("auth_type")) or _infer_auth_type(extras, login, password)).lower()
    if auth_type not in AUTH_TYPES:
        raise _bad(conn_id, "extra 'auth_type'", f"must be one of {AUTH_TYPES}, got {auth_type!r}")

    sourced = auth_type == CHAIN or auth_type in CREDENTIAL_SOURCES
    region = _text(extras.get("region")) or (_text(os.environ.get(REGION_ENV)) if sourced else None)
    if region is None:
        also = f" (or {REGION_ENV} in the environment)" if sourced else ""
        raise _bad(conn_id, "extra 'region'", f"is required{also} (e.g. 'ap-southeast-1')")
    project_id = _text(extras.get("project_id")) or (
        _sourced_project_id(auth_type, _text(extras.get("credentials_file"))) if sourced else None
    )
    project_name = _text(extras.get("project_name"))
    if project_id is None and not (auth_type == "password" and project_name):
        needed = "or 'project_name' " if auth_type == "password" else ""
        if sourced:
            profile = ", or the profile's project_id" if auth_type in (CHAIN, "profile") else ""
            needed += f"(or {PROJECT_ID_ENV}{profile}) "
        raise _bad(conn_id, "extra 'project_id'", f"{needed}is required for auth_type {auth_type!r}")
    if project_id and project_name and auth_type == "password":
        project_name = None  # a token is scoped by one of them; the id is the precise one

    endpoint_value = _text(extras.get("endpoint")) or _host_endpoint(conn)
    endpoint = _url(conn_id, "extra 'endpoint'", endpoint_value or DEFAULT_ENDPOINT.format(region=region))
    iam_value = _text(extras.get("iam_endpoint")) or DEFAULT_IAM_ENDPOINT.format(region=region)
    iam_endpoint = _url(conn_id, "extra 'iam_endpoint'", iam_value)

    values: dict[str, Any] = {}
    if auth_type == "aksk":
        if not login:
            raise _bad(conn_id, "login", "must hold the access key (AK) for auth_type 'aksk'")
        if not password:
            raise _bad(conn_id, "password", "must hold the secret key (SK) for auth_type 'aksk'")
        values.update(
            access_key=login, secret_key=password, security_token=_text(extras.get("security_token"))
        )
    elif auth_type == "password":
        domain_name = _text(extras.get("domain_name"))
        if domain_name is None:
            raise _bad(
                conn_id, "extra 'domain_name'", "(the account name) is required for auth_type 'password'"
            )
        if not login:
            raise _bad(conn_id, "login", "must hold the IAM user name for auth_type 'password'")
        if not password:
            raise _bad(conn_id, "password", "must hold the IAM user's password for auth_type 'password'")
        agency_name = _text(extras.get("agency_name"))
        values.update(
            domain_name=domain_name,
            user_name=login,
            password=password,
            agency_name=agency_name,
            agency_domain_name=(_text(extras.get("agency_domain_name")) or domain_name)
            if agency_name
            else None,
        )
    elif auth_type == "token":
        token = _text(extras.get("token"))
        if token is None:
            raise _bad(conn_id, "extra 'token'", "is required for auth_type 'token'")
        values.update(token=token)
    else:
        if login or password:
            raise _bad(
                conn_id,
                "login/password",
                f"must be empty for auth_type {auth_type!r} (its credentials come from the environment, a "
                "file or a metadata service; for an AK/SK pair leave auth_type unset or 'aksk')",
            )
        sts = _text(extras.get("sts_endpoint"))
        values.update(
            iam_endpoint_set=_text(extras.get("iam_endpoint")) is not None,
            sts_endpoint=_url(conn_id, "extra 'sts_endpoint'", sts) if sts else None,
            metadata_endpoint=_url(
                conn_id,
                "extra 'metadata_endpoint'",
                _text(extras.get("metadata_endpoint")) or DEFAULT_METADATA_ENDPOINT,
            ),
            id_token_file=_text(extras.get("id_token_file")),
            credentials_file=_text(extras.get("credentials_file")),
        )

    retry = RetrySettings(
        attempts=int(
            _number(conn_id, "retry_attempts", extras.get("retry_attempts"), DEFAULT_RETRY_ATTEMPTS)
        ),
        min_wait=_number(conn_id, "retry_min_wait", extras.get("retry_min_wait"), DEFAULT_RETRY_MIN_WAIT),
        max_wait=_number(conn_id, "retry_max_wait", extras.get("retry_max_wait"), DEFAULT_RETRY_MAX_WAIT),
        retry_after_cap=_number(
            conn_id, "retry_after_cap", extras.get("retry_after_cap"), DEFAULT_RETRY_AFTER_CAP
        ),
        retry_sync_invoke=_bool(conn_id, "retry_sync_invoke", extras.get("retry_sync_invoke"), False),
    )
    return FunctionGraphSettings(
        conn_id=conn_id,
        auth_type=auth_type,  # type: ignore[arg-type]  # checked against AUTH_TYPES above
        region=region,
        project_id=project_id,
        project_name=project_name,
        endpoint=endpoint,
        iam_endpoint=iam_endpoint,
        verify=_verify(conn_id, extras.get("verify")),
        proxies=_proxies(conn_id, extras.get("proxies")),
        connect_timeout=_number(
            conn_id, "connect_timeout", extras.get("connect_timeout"), DEFAULT_CONNECT_TIMEOUT, minimum=0.001
        ),
        read_timeout=_number(
            conn_id, "read_timeout", extras.get("read_timeout"), DEFAULT_READ_TIMEOUT, minimum=0.001
        ),
        read_timeout_set=extras.get("read_timeout") not in (None, ""),
        retry=retry,
        host_cache=None
        if extras.get("host_cache") in (None, "")
        else _bool(conn_id, "host_cache", extras.get("host_cache"), True),
        host_cache_dir=_text(extras.get("host_cache_dir")),
        credential_cooldown=_number(
            conn_id, "credential_cooldown", extras.get("credential_cooldown"), DEFAULT_CREDENTIAL_COOLDOWN
        ),
        **values,
    )
