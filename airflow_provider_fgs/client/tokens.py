"""The IAM token lifecycle, independent of the HTTP library.

* :class:`TokenCache` is process-wide and thread-safe. Tokens are keyed by the identity of the
  credentials (:attr:`FunctionGraphSettings.token_cache_key`), so every hook of one connection in a
  process shares one token. Its methods never block on I/O, so async code can use it too.
* :class:`SharedTokens` keeps the tokens in the host's private cache directory
  (:mod:`airflow_provider_fgs.client.host_cache`), so task processes, the triggerer and the connection Test
  on one host share one token per credential identity.
* :class:`TokenProvider` fetches through a pluggable ``send`` callable (the hook passes its
  ``requests`` session); N threads asking at once cause one token request, and with a
  :class:`SharedTokens`, N processes too. The in-process cache stays in front, so a call with a
  cached token touches no file.

Fetching a token blocks (an HTTP request, perhaps a file lock): the event loop's client runs it in a worker
thread, and only when the process's cache has no fresh token (:meth:`TokenProvider.cached`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from airflow_provider_fgs.client import metrics
from airflow_provider_fgs.client.host_cache import HostStore
from airflow_provider_fgs.client.settings import FunctionGraphSettings
from airflow_provider_fgs.protocol.errors import AuthenticationError
from airflow_provider_fgs.protocol.http import HttpRequest, Response
from airflow_provider_fgs.protocol.iam import (
    IamToken,
    build_assume_role_token_request,
    build_password_token_request,
    parse_token_response,
)

# Refresh this long before expires_at (the official SDK uses 40 minutes for temporary credentials),
# but never more than a quarter of the token's lifetime, so short-lived tokens are still used.
REFRESH_MARGIN = timedelta(minutes=40)
REFRESH_FRACTION = 0.25

Send = Callable[[HttpRequest], Response]
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CachedToken:
    """
    A token with the moment from which it should be replaced.

    :param token: the IAM token.
    :param refresh_at: from this moment on, a new token is fetched before the next call.
    """

    token: IamToken
    refresh_at: datetime

    @property
    def value(self) -> str:
        return self.token.value

    @classmethod
    def of(cls, token: IamToken, *, fetched_at: datetime) -> CachedToken:
        """Wrap ``token`` with its refresh moment, computed from its lifetime."""
        start = token.issued_at if token.issued_at and token.issued_at <= fetched_at else fetched_at
        lifetime = max(token.expires_at - start, timedelta(0))
        margin = min(REFRESH_MARGIN, lifetime * REFRESH_FRACTION)
        return cls(token=token, refresh_at=token.expires_at - margin)

    def is_fresh(self, now: datetime) -> bool:
        return now < self.refresh_at


@dataclass
class TokenCache:
    """
    Process-wide token store. Every method is short and non-blocking (a plain lock around a dict).

    Use :meth:`lock_for` to serialize fetches of one key across threads.
    """

    _tokens: dict[str, CachedToken] = field(default_factory=dict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str, now: datetime) -> CachedToken | None:
        """The cached token of ``key`` when it is not due for refresh, else ``None``."""
        with self._guard:
            cached = self._tokens.get(key)
        return cached if cached is not None and cached.is_fresh(now) else None

    def put(self, key: str, cached: CachedToken) -> None:
        with self._guard:
            self._tokens[key] = cached

    def invalidate(self, key: str, rejected_value: str) -> None:
        """
        Drop the token of ``key`` if it is still ``rejected_value``.

        Comparing the value means that when many callers see the same 401, only the first drops it
        and the others find the replacement.
        """
        with self._guard:
            cached = self._tokens.get(key)
            if cached is not None and cached.value == rejected_value:
                del self._tokens[key]

    def lock_for(self, key: str) -> threading.Lock:
        """The lock that serializes token fetches of ``key`` in this process."""
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def clear(self) -> None:
        """Forget every token (tests, or after rotating credentials)."""
        with self._guard:
            self._tokens.clear()


TOKEN_CACHE = TokenCache()
"""The process-wide cache used by default."""


class SharedTokens:
    """
    Tokens in the host's private cache directory, one record per credential identity.

    A record is used only while it is fresh (before its refresh moment, and so before ``expires_at``).

    :param store: the host's store.
    """

    KIND = "token"

    def __init__(self, store: HostStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"SharedTokens({self.store!r})"

    def name(self, key: str) -> str:
        return self.store.record_name(self.KIND, key)

    def get(self, key: str, now: datetime) -> CachedToken | None:
        """The shared token of ``key`` when it is fresh, else ``None``."""
        record = self.store.read(self.name(key))
        cached = _token_from_record(record)
        if record is not None and cached is None:
            self.store.discard(self.name(key), "not a token record")
        return cached if cached is not None and cached.is_fresh(now) else None

    def put(self, key: str, cached: CachedToken) -> None:
        token = cached.token
        self.store.write(
            self.name(key),
            {
                "value": token.value,
                "expires_at": token.expires_at.isoformat(),
                "issued_at": token.issued_at.isoformat() if token.issued_at else None,
                "project_id": token.project_id,
                "refresh_at": cached.refresh_at.isoformat(),
            },
        )

    def invalidate(self, key: str, rejected_value: str) -> None:
        """Remove the shared token of ``key`` if it is still ``rejected_value`` (after a 401)."""
        name = self.name(key)
        with self.store.locked(name):
            cached = _token_from_record(self.store.read(name))
            if cached is not None and cached.value == rejected_value:
                self.store.remove(name)


def _token_from_record(record: Mapping[str, object] | None) -> CachedToken | None:
    if record is None:
        return None
    try:
        value, project_id, issued = record["value"], record.get("project_id"), record.get("issued_at")
        if not isinstance(value, str) or not value or not isinstance(project_id, str | None):
            return None
        token = IamToken(
            value=value,
            expires_at=datetime.fromisoformat(str(record["expires_at"])),
            issued_at=datetime.fromisoformat(str(issued)) if issued else None,
            project_id=project_id,
        )
        refresh_at = min(datetime.fromisoformat(str(record["refresh_at"])), token.expires_at)
    except (KeyError, TypeError, ValueError):
        return None
    if token.expires_at.tzinfo is None or refresh_at.tzinfo is None:
        return None
    return CachedToken(token=token, refresh_at=refresh_at)


def token_request(settings: FunctionGraphSettings) -> HttpRequest:
    """The password token request of ``settings`` (password mode)."""
    return build_password_token_request(
        settings.iam_endpoint,
        domain_name=settings.domain_name or "",
        user_name=settings.user_name or "",
        password=settings.password or "",
        project_id=settings.project_id,
        project_name=settings.project_name,
    )


def assume_role_request(settings: FunctionGraphSettings, caller_token: str) -> HttpRequest:
    """The agency token request of ``settings`` authenticated by ``caller_token``."""
    return build_assume_role_token_request(
        settings.iam_endpoint,
        caller_token=caller_token,
        domain_name=settings.agency_domain_name or settings.domain_name or "",
        agency_name=settings.agency_name or "",
        project_id=settings.project_id,
        project_name=settings.project_name,
    )


def parse_token(settings: FunctionGraphSettings, response: Response) -> IamToken:
    """Parse IAM's answer for ``settings`` (errors name the principal, never a secret)."""
    status, headers, body = response
    return parse_token_response(status, headers, body, who=settings.principal)


class TokenProvider:
    """
    Thread-safe, lazily fetching, shared IAM tokens for one connection.

    :param settings: the connection's settings (password or token mode).
    :param send: sends one request and returns ``(status, headers, body)``; it may retry transient
        failures itself and raises typed errors for transport failures.
    :param cache: the token cache; the process-wide one by default.
    :param clock: returns the current UTC time.
    :param on_new_token: called with each newly fetched token value (e.g. to mask it in logs).
    :param on_rejected: called when IAM rejects the password (e.g. to start a cool-down).
    :param shared: the host-wide tokens, consulted (under the record's file lock) when the
        process has none; ``None`` keeps tokens in the process only.
    """

    def __init__(
        self,
        settings: FunctionGraphSettings,
        send: Send,
        *,
        cache: TokenCache = TOKEN_CACHE,
        clock: Clock = _utc_now,
        on_new_token: Callable[[str], None] | None = None,
        on_rejected: Callable[[AuthenticationError], None] | None = None,
        shared: SharedTokens | None = None,
    ) -> None:
        self._on_rejected = on_rejected
        self.settings = settings
        self._shared = shared
        self._send = send
        self._cache = cache
        self._clock = clock
        self._on_new_token = on_new_token
        self._key = settings.token_cache_key

    def __repr__(self) -> str:
        return f"TokenProvider({self.settings.principal})"

    def cached(self) -> str | None:
        """The token when this process holds a fresh one (never blocks), else ``None``."""
        if self.settings.auth_type == "token":
            return self.settings.token or ""
        cached = self._cache.get(self._key, self._clock())
        return cached.value if cached is not None else None

    def token(self) -> str:
        """A valid token, fetched when none is cached or the cached one is due for refresh."""
        if self.settings.auth_type == "token":
            return self.settings.token or ""
        cached = self._cache.get(self._key, self._clock())
        if cached is not None:
            return cached.value
        with self._cache.lock_for(self._key):
            cached = self._cache.get(self._key, self._clock())  # another thread may have fetched it
            if cached is None:
                cached = self._fetch_shared() if self._shared is not None else self._fetch()
                self._cache.put(self._key, cached)
        return cached.value

    def _fetch_shared(self) -> CachedToken:
        """The host's token when fresh, else a new one stored for the others; under the file lock."""
        assert self._shared is not None
        with self._shared.store.locked(self._shared.name(self._key)):
            cached = self._shared.get(self._key, self._clock())
            if cached is not None:
                self._announce(cached.value)
                return cached
            cached = self._fetch()
            self._shared.put(self._key, cached)
            return cached

    def invalidate(self, rejected_value: str) -> None:
        """Forget ``rejected_value`` after a 401 so the next :meth:`token` fetches a new one."""
        if self.settings.auth_type == "token":
            return
        self._cache.invalidate(self._key, rejected_value)
        if self._shared is not None:
            self._shared.invalidate(self._key, rejected_value)

    def _fetch(self) -> CachedToken:
        try:
            cached = self._fetch_from_iam()
        except Exception as err:
            metrics.token_fetch_failed(self.settings.auth_type, err)
            raise
        metrics.token_fetched(self.settings.auth_type)
        return cached

    def _fetch_from_iam(self) -> CachedToken:
        fetched_at = self._clock()
        try:
            token = parse_token(self.settings, self._send(token_request(self.settings)))
        except AuthenticationError as err:
            if err.http_status == 401 and self._on_rejected is not None:
                self._on_rejected(err)
            raise
        self._announce(token.value)
        if self.settings.agency_name:
            response = self._send(assume_role_request(self.settings, token.value))
            token = parse_token(self.settings, response)
            self._announce(token.value)
        if self.settings.project_id is None and token.project_id is None:
            raise AuthenticationError(
                f"IAM issued a token for {self.settings.principal} without a project id; "
                "set extra 'project_id' on the connection"
            )
        return CachedToken.of(token, fetched_at=fetched_at)

    def _announce(self, value: str) -> None:
        if self._on_new_token is not None:
            self._on_new_token(value)

    def project_id(self) -> str | None:
        """The project id learnt from the token (password mode scoped by project name)."""
        if self.settings.project_id:
            return self.settings.project_id
        self.token()
        cached = self._cache.get(self._key, self._clock())
        return cached.token.project_id if cached else None
