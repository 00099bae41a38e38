"""Credential lockouts of the real platform: the API gateway's for an AK/SK, IAM's for a user's password."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class LockoutRules:
    """
    When a credential gets locked (Huawei Cloud's defaults).

    :param aksk_max_failures: consecutive failed signatures of one access key that lock it.
    :param aksk_lock_seconds: how long the access key stays locked.
    :param iam_max_failures: wrong passwords of one IAM user, within ``iam_failure_window``, that lock it.
    :param iam_failure_window: seconds over which wrong passwords are counted.
    :param iam_lock_seconds: how long the user stays locked (a correct password is refused too).
    """

    aksk_max_failures: int = 5
    aksk_lock_seconds: float = 300.0
    iam_max_failures: int = 5
    iam_failure_window: float = 900.0
    iam_lock_seconds: float = 900.0


class Lockouts:
    """
    Failure counters and locks per access key and per IAM user (thread-safe).

    :param rules: the rules; ``None`` never locks anything.
    """

    def __init__(self, rules: LockoutRules | None = None) -> None:
        self.rules = rules
        self._lock = threading.Lock()
        self._aksk_failures: dict[str, int] = {}
        self._password_failures: dict[tuple[str, str], deque[float]] = {}
        self._locked_until: dict[object, float] = {}
        self.locks_triggered = 0

    def access_key_locked(self, access_key: str) -> bool:
        return self._locked(("aksk", access_key))

    def user_locked(self, domain: str, user: str) -> bool:
        return self._locked(("user", domain, user))

    def signature_failed(self, access_key: str) -> None:
        if self.rules is None:
            return
        with self._lock:
            count = self._aksk_failures.get(access_key, 0) + 1
            self._aksk_failures[access_key] = count
            if count >= self.rules.aksk_max_failures:
                self._aksk_failures[access_key] = 0
                self._lock_for(("aksk", access_key), self.rules.aksk_lock_seconds)

    def signature_accepted(self, access_key: str) -> None:
        with self._lock:
            self._aksk_failures.pop(access_key, None)

    def password_failed(self, domain: str, user: str) -> None:
        if self.rules is None:
            return
        now = time.monotonic()
        with self._lock:
            failures = self._password_failures.setdefault((domain, user), deque())
            failures.append(now)
            while failures and failures[0] <= now - self.rules.iam_failure_window:
                failures.popleft()
            if len(failures) >= self.rules.iam_max_failures:
                failures.clear()
                self._lock_for(("user", domain, user), self.rules.iam_lock_seconds)

    def reset(self) -> None:
        """Forget every failure and lock."""
        with self._lock:
            self._aksk_failures.clear()
            self._password_failures.clear()
            self._locked_until.clear()
            self.locks_triggered = 0

    def _lock_for(self, key: object, seconds: float) -> None:
        self._locked_until[key] = time.monotonic() + seconds
        self.locks_triggered += 1

    def _locked(self, key: object) -> bool:
        with self._lock:
            until = self._locked_until.get(key)
            if until is None:
                return False
            if time.monotonic() >= until:
                del self._locked_until[key]
                return False
            return True
