"""
Credential cool-downs: after IAM or the API gateway rejects a credential, stop sending it for a while.

The API gateway locks an AK/SK after 5 failed signatures (for 5 minutes) and IAM locks a user after
5 wrong passwords in 15 minutes (for 15 minutes, console included). A DAG with a bad key, Airflow
retries and a mapped fan-out would reach those limits by itself. So the first rejection is recorded
for the credential's identity (:attr:`FunctionGraphSettings.credential_key`, a hash that changes with
the secret) in the host's private cache directory, and every process of the host using the same
credential fails fast until the cool-down ends. A connection with corrected credentials has another
identity, so it is not held back.

Processes that start at once with an AK/SK not yet accepted on this host would all send their
request before the first rejection comes back. So until the API gateway has accepted the AK/SK once
(recorded as well), one request at a time is sent with it: the others wait for its answer, at most
:data:`FIRST_USE_WAIT` seconds (a rejection comes back at once; a longer wait means the gateway let
the request through to a running function).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import ClassVar

from airflow_provider_fgs.client import metrics
from airflow_provider_fgs.client.host_cache import HostStore
from airflow_provider_fgs.client.settings import FunctionGraphSettings
from airflow_provider_fgs.protocol.errors import AuthenticationError, CredentialCoolDownError

_MAX_REASON = 400
FIRST_USE_WAIT = 5.0


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class CredentialCoolDowns:
    """
    Rejections of one connection's credentials, shared on the host when a store is given.

    :param settings: the connection's settings (``credential_cooldown`` seconds, 0 turns it off).
    :param store: the host's store; ``None`` keeps the cool-down in this process.
    """

    KIND = "rejected"
    ACCEPTED_KIND = "accepted"
    _accepted: ClassVar[set[str]] = set()
    # Without a usable store, cool-downs still hold within the process.
    _local: ClassVar[dict[str, dict[str, object]]] = {}
    _local_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, settings: FunctionGraphSettings, store: HostStore | None) -> None:
        self.settings = settings
        self.store = store
        key = settings.credential_key
        self._name = HostStore.record_name(self.KIND, key) if key else None
        self._accepted_name = HostStore.record_name(self.ACCEPTED_KIND, key) if key else None

    @property
    def enabled(self) -> bool:
        return self._name is not None and self.settings.credential_cooldown > 0

    def check(self) -> None:
        """
        Raise when the credentials were rejected less than the cool-down ago.

        :raises CredentialCoolDownError: naming when and why they were rejected, and until when.
        """
        if not self.enabled:
            return
        record = self._read()
        if record is None:
            return
        until, since = record.get("until"), record.get("since")
        if not isinstance(until, int | float) or not isinstance(since, int | float):
            return
        now = time.time()
        if now >= until or until - since > self.settings.credential_cooldown + 1:
            return  # over, or recorded with a longer cool-down than this connection now asks for
        settings = self.settings
        metrics.cool_down_refused_call(settings.auth_type)
        raise CredentialCoolDownError(
            f"Not sending requests with the credentials of {settings.principal}: they were rejected at "
            f"{_iso(since)} ({record.get('reason')}). "
            f"To keep retries and parallel tasks from getting them locked, this host does not use them "
            f"until {_iso(until)}. Correct the connection's credentials (new ones are used at once), or "
            f"set the connection extra 'credential_cooldown' (seconds, 0 turns this off).",
            until=_iso(until),
        )

    def record(self, error: AuthenticationError) -> None:
        """Start the cool-down after ``error`` (IAM or FunctionGraph rejected the credentials)."""
        if not self.enabled or isinstance(error, CredentialCoolDownError):
            return
        now = time.time()
        record: dict[str, object] = {
            "since": now,
            "until": now + self.settings.credential_cooldown,
            "reason": str(error)[:_MAX_REASON],
        }
        assert self._name is not None
        assert self._accepted_name is not None
        with self._local_guard:
            self._local[self._name] = record
            self._accepted.discard(self._accepted_name)
        if self.store is not None:
            self.store.write(self._name, record)
            self.store.remove(self._accepted_name)
        metrics.cool_down_started(self.settings.auth_type)

    @property
    def identity(self) -> str | None:
        """A name of the credentials (a hash), e.g. to key an in-process gate; ``None`` for a token."""
        return self._accepted_name

    @property
    def needs_first_use_turn(self) -> bool:
        """Whether requests still go through :meth:`first_use` (not yet accepted in this process)."""
        name = self._accepted_name
        return self.enabled and self.store is not None and name is not None and name not in self._accepted

    @contextmanager
    def first_use(self) -> Iterator[None]:
        """
        Around a request with the credentials: while they are not known to be accepted on this host,
        one process at a time (see the module's docstring); then nothing.

        :raises CredentialCoolDownError: when a rejection was recorded while waiting.
        """
        name = self._accepted_name
        if not self.needs_first_use_turn or self.store is None or name is None:
            yield
            return
        with ExitStack() as stack:
            stack.enter_context(self.store.locked(name, timeout=FIRST_USE_WAIT))
            self.check()
            if self.store.read(name) is not None:
                with self._local_guard:
                    self._accepted.add(name)
                stack.close()  # known good: no need to hold the others back
            yield

    def accepted(self) -> None:
        """The platform accepted the credentials: later requests need no :meth:`first_use` turn."""
        name = self._accepted_name
        if not self.enabled or name is None or name in self._accepted:
            return
        with self._local_guard:
            self._accepted.add(name)
        if self.store is not None:
            self.store.write(name, {"at": time.time()})

    def _read(self) -> dict[str, object] | None:
        assert self._name is not None
        if self.store is not None and self.store.usable:
            return self.store.read(self._name)
        with self._local_guard:
            return self._local.get(self._name)
