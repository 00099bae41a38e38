"""Temporary credentials from the credential chain, fetched once per host and refreshed before they expire.

Like the IAM token (:mod:`~airflow_provider_fgs.client.tokens`): the process keeps what it fetched, and
through the host's private cache directory (:mod:`~airflow_provider_fgs.client.host_cache`, encrypted with
Airflow's Fernet key when there is one) task processes, the triggerer and the connection Test share one
fetch per refresh. Credentials are replaced 40 minutes before they expire (as the Huawei SDK does), or
after three quarters of their lifetime when they live shorter, and once after a request is refused with
them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

from airflow_provider_fgs.client import metrics
from airflow_provider_fgs.client.credential_chain import CredentialChain, NoCredentialSource
from airflow_provider_fgs.client.host_cache import HostStore
from airflow_provider_fgs.client.settings import FunctionGraphSettings
from airflow_provider_fgs.client.tokens import REFRESH_FRACTION, REFRESH_MARGIN
from airflow_provider_fgs.protocol.errors import AuthenticationError
from airflow_provider_fgs.protocol.temporary_credentials import TemporaryCredentials

KIND = "credentials"
log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SourcedCredentials:
    """
    The temporary credentials of one connection whose secret is not stored (thread-safe, lazily fetched).

    :param settings: the connection's settings (``chain`` or one source).
    :param chain: where the credentials come from.
    :param store: the host's store; ``None`` keeps them in the process only.
    :param on_new: called with each secret value of newly fetched credentials (to mask it in logs).
    :param on_rejected: called when a source refused (to start the credentials' cool-down).
    :param clock: the current UTC time.
    """

    _process: ClassVar[dict[str, tuple[TemporaryCredentials, datetime]]] = {}
    _locks: ClassVar[dict[str, threading.Lock]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        settings: FunctionGraphSettings,
        chain: CredentialChain,
        *,
        store: HostStore | None,
        on_new: Callable[[str], None],
        on_rejected: Callable[[AuthenticationError], None],
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.settings = settings
        self.chain = chain
        self.store = store
        self._on_new = on_new
        self._on_rejected = on_rejected
        self._clock = clock
        self._key = settings.credential_key or settings.conn_id
        self._record = HostStore.record_name(KIND, self._key)

    def cached(self) -> TemporaryCredentials | None:
        """The credentials when this process holds fresh ones (never blocks), else ``None``."""
        with self._guard:
            held = self._process.get(self._key)
        if held is None or self._clock() >= held[1]:
            return None
        return held[0]

    def credentials(self) -> TemporaryCredentials:
        """Fresh credentials: this process's, the host's, or fetched (once for the host)."""
        cached = self.cached()
        if cached is not None:
            return cached
        with self._guard:
            lock = self._locks.setdefault(self._key, threading.Lock())
        with lock:
            cached = self.cached()
            if cached is not None:
                return cached
            if self.store is None:
                return self._keep(*self._fetch())
            with self.store.locked(self._record):
                shared = self._shared()
                if shared is not None:
                    return self._keep(*shared)
                fresh, refresh_at = self._fetch()
                self.store.write(self._record, {**fresh.to_record(), "refresh_at": refresh_at.isoformat()})
                return self._keep(fresh, refresh_at)

    def invalidate(self, rejected: TemporaryCredentials) -> None:
        """Forget ``rejected`` (a request was refused with it) so that the next use fetches new ones."""
        with self._guard:
            held = self._process.get(self._key)
            if held is not None and held[0].access_key == rejected.access_key:
                del self._process[self._key]
        if self.store is not None:
            with self.store.locked(self._record):
                shared = self._shared()
                if shared is not None and shared[0].access_key == rejected.access_key:
                    self.store.remove(self._record)

    def _shared(self) -> tuple[TemporaryCredentials, datetime] | None:
        """The host's credentials and their refresh moment, when they are fresh (a bad record is dropped)."""
        assert self.store is not None
        record = self.store.read(self._record)
        if record is None:
            return None
        credentials = TemporaryCredentials.from_record(record)
        try:
            refresh_at = datetime.fromisoformat(str(record.get("refresh_at")))
        except ValueError:
            credentials = None
        if credentials is None or refresh_at.tzinfo is None:
            self.store.discard(self._record, "not a credentials record")
            return None
        if self._clock() >= refresh_at:
            return None
        self._announce(credentials)
        return credentials, refresh_at

    def _fetch(self) -> tuple[TemporaryCredentials, datetime]:
        """New credentials from the chain, and when to replace them (fixed now, from their lifetime)."""
        fetched_at = self._clock()
        try:
            credentials = self.chain.resolve()
        except AuthenticationError as err:
            metrics.token_fetch_failed(self.settings.auth_type, err)
            if not isinstance(err, NoCredentialSource):  # refused, not missing: cool down
                self._on_rejected(err)
            raise
        metrics.token_fetched(self.settings.auth_type)
        self._announce(credentials)
        refresh_at = credentials.refresh_at(margin=REFRESH_MARGIN, fraction=REFRESH_FRACTION, now=fetched_at)
        log.info(
            "Fetched temporary credentials from %s for connection %r (access key %s, replaced from %s)",
            credentials.source,
            self.settings.conn_id,
            credentials.access_key,
            refresh_at.isoformat(timespec="seconds"),
        )
        return credentials, refresh_at

    def _keep(self, credentials: TemporaryCredentials, refresh_at: datetime) -> TemporaryCredentials:
        with self._guard:
            self._process[self._key] = (credentials, refresh_at)
        return credentials

    def _announce(self, credentials: TemporaryCredentials) -> None:
        for secret in credentials.secrets():
            if secret:
                self._on_new(secret)

    @classmethod
    def clear(cls) -> None:
        """Forget every process's credentials (tests)."""
        with cls._guard:
            cls._process.clear()
