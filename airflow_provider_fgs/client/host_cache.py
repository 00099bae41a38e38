"""
A private per-user directory of small records shared by the provider's processes on one host.

Airflow runs every task in its own process, and the triggerer and the API server's connection Test
in others; an in-process cache is empty in each of them. This directory lets them share what must be
shared: IAM tokens (one token request per host instead of one per task) and credential cool-downs
(a rejected credential is not sent again by the next task).

What keeps it safe:

* the directory is created ``0700`` and used only when it is a real directory (not a symlink)
  owned by the current user with no group or other permissions; otherwise the store is disabled;
* records are files named by a hash (never a secret), written ``0600`` to a temporary file and
  renamed into place, so a reader sees the old record or the new one, never a half-written one;
* a record is trusted only when it is a regular file (not a symlink) owned by the current user with
  no group or other permissions, and parses (and, with a Fernet key, decrypts); otherwise it is
  ignored and removed;
* records are encrypted with Airflow's Fernet key (``[core] fernet_key``) when one is configured;
* an ``fcntl`` lock per record serializes fetches, so N processes racing for a token send one request.

Settings (connection extras override the Airflow configuration, which overrides the defaults):
``host_cache`` (``[functiongraph] host_cache``, default true) turns it on or off, and
``host_cache_dir`` (``[functiongraph] host_cache_dir``) chooses the directory; the default is
``$XDG_RUNTIME_DIR/airflow-provider-fgs`` or ``<tmp>/airflow-provider-fgs-<uid>``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CONFIG_SECTION = "functiongraph"
_MAX_RECORD_BYTES = 256 * 1024
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC


def default_directory() -> Path:
    """The default directory: in the user's runtime directory when there is one, else in the temp dir."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "airflow-provider-fgs"
    return Path(tempfile.gettempdir()) / f"airflow-provider-fgs-{os.getuid()}"


class _NoEncryption:
    """Records in clear (still 0600 in a 0700 directory) when Airflow has no Fernet key."""

    is_encrypted = False


_NO_ENCRYPTION = _NoEncryption()


def _flock(fd: int, timeout: float | None) -> bool:
    """Take the exclusive lock of ``fd``, waiting at most ``timeout`` seconds (``None``: no limit)."""
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077 == 0


class HostStore:
    """
    JSON records in a private directory, optionally Fernet-encrypted, with a file lock per record.

    Every method fails soft: when the directory is unusable, :meth:`read` returns ``None`` and
    :meth:`write` does nothing, so callers fall back to their in-process behaviour.

    :param directory: the directory (created ``0700`` if missing).
    :param fernet: an object with ``encrypt``/``decrypt`` and ``is_encrypted`` (Airflow's Fernet);
        ``None`` reads Airflow's on first use.
    """

    def __init__(self, directory: str | os.PathLike[str], *, fernet: Any | None = None) -> None:
        self.directory = Path(directory)
        self._fernet: Any = fernet
        self._usable: bool | None = None
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"HostStore({str(self.directory)!r})"

    # -- directory and encryption -----------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Whether the directory is private to this user (checked once, created if missing)."""
        with self._guard:
            if self._usable is None:
                self._usable = self._prepare_directory() and self._prepare_fernet()
            return self._usable

    def _prepare_directory(self) -> bool:
        with suppress(FileExistsError):
            self.directory.mkdir(mode=0o700, parents=True)
        try:
            st = os.lstat(self.directory)
        except OSError as err:
            log.warning("FunctionGraph host cache disabled: cannot use %s (%s)", self.directory, err)
            return False
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            log.warning(
                "FunctionGraph host cache disabled: %s is not a directory owned by this user",
                self.directory,
            )
            return False
        if stat.S_IMODE(st.st_mode) & 0o077:
            try:
                os.chmod(self.directory, 0o700)
            except OSError as err:
                log.warning(
                    "FunctionGraph host cache disabled: cannot make %s private (%s)", self.directory, err
                )
                return False
        return True

    def _prepare_fernet(self) -> bool:
        if self._fernet is not None:
            return True
        try:
            from airflow_provider_fgs.compat import get_fernet

            self._fernet = get_fernet() or _NO_ENCRYPTION
        except Exception as err:  # an invalid key: never fall back to storing in clear
            log.warning("FunctionGraph host cache disabled: Airflow's Fernet key is unusable (%s)", err)
            return False
        return True

    @property
    def encrypted(self) -> bool:
        """Whether records are encrypted (Airflow has a Fernet key)."""
        return self.usable and bool(getattr(self._fernet, "is_encrypted", False))

    # -- records ----------------------------------------------------------------------------------

    @staticmethod
    def record_name(kind: str, key: str) -> str:
        """The file name of record ``key`` of ``kind`` (a hash: the key may derive from secrets)."""
        digest = hashlib.sha256(b"\x00".join((kind.encode(), key.encode()))).hexdigest()
        return f"{kind}-{digest[:48]}"

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    @contextmanager
    def locked(self, name: str, *, timeout: float | None = None) -> Iterator[bool]:
        """
        Hold the exclusive lock of record ``name`` (across processes).

        Yields whether the lock is held: ``False`` when the store is unusable or ``timeout`` seconds
        passed first (the caller then goes on without it).
        """
        if not self.usable:
            yield False
            return
        try:
            fd = os.open(self.directory / f"{name}.lock", os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600)
        except OSError as err:
            self._lost_directory(err)
            log.warning("FunctionGraph host cache: cannot open the lock of %s (%s)", name, err)
            yield False
            return
        try:
            if not _private(os.fstat(fd)):
                log.warning("FunctionGraph host cache: ignoring the lock file of %s (not private)", name)
                yield False
                return
            held = _flock(fd, timeout)
            try:
                yield held
            finally:
                if held:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def read(self, name: str) -> dict[str, Any] | None:
        """Record ``name``, or ``None`` when absent or not to be trusted (then it is removed)."""
        if not self.usable:
            return None
        path = self._path(name)
        try:
            fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as err:
            if err.errno == errno.ELOOP:  # a symlink planted in place of the record
                self.discard(name, "a symlink")
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not _private(st) or st.st_size > _MAX_RECORD_BYTES:
                self.discard(name, "not a private regular file of this user")
                return None
            with os.fdopen(fd, "rb", closefd=False) as handle:
                raw = handle.read(_MAX_RECORD_BYTES + 1)
        finally:
            os.close(fd)
        record = self._decode(raw)
        if record is None:
            self.discard(name, "unreadable or not encrypted with this Fernet key")
        return record

    def write(self, name: str, record: dict[str, Any]) -> None:
        """Replace record ``name`` atomically (a ``0600`` temporary file renamed into place)."""
        if not self.usable:
            return
        data = json.dumps(record, separators=(",", ":")).encode()
        if self.encrypted:
            data = self._fernet.encrypt(data)
        try:
            fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.directory)
        except OSError as err:
            self._lost_directory(err)
            log.warning("FunctionGraph host cache: cannot write %s (%s)", name, err)
            return
        try:
            with os.fdopen(fd, "wb") as handle:  # mkstemp creates it 0600
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self._path(name))
        except OSError as err:
            log.warning("FunctionGraph host cache: cannot write %s (%s)", name, err)
            with suppress(OSError):
                os.unlink(temporary)

    def remove(self, name: str) -> None:
        """Delete record ``name`` if present."""
        if self.usable:
            with suppress(FileNotFoundError):
                os.unlink(self._path(name))

    def _lost_directory(self, err: OSError) -> None:
        """The directory was removed (e.g. a temp-dir cleaner): prepare it again on the next use."""
        if isinstance(err, FileNotFoundError):
            with self._guard:
                self._usable = None

    def discard(self, name: str, why: str) -> None:
        """Remove record ``name``, which is not to be trusted (``why`` is logged)."""
        log.warning("FunctionGraph host cache: ignoring and removing record %s (%s)", name, why)
        with suppress(OSError):
            os.unlink(self._path(name))

    def _decode(self, raw: bytes) -> dict[str, Any] | None:
        try:
            if self.encrypted:
                raw = self._fernet.decrypt(raw)
            record = json.loads(raw)
        except Exception:  # InvalidToken, bad JSON, bad UTF-8: never trusted
            return None
        return record if isinstance(record, dict) else None


_STORES: dict[str, HostStore] = {}
_STORES_GUARD = threading.Lock()


def _config(key: str) -> str | None:
    try:
        from airflow_provider_fgs.compat import conf

        value = conf.get(CONFIG_SECTION, key, fallback=None)
    except Exception:
        return None
    return str(value).strip() if value not in (None, "") else None


def host_store(enabled: bool | None, directory: str | None) -> HostStore | None:
    """
    The process's store for a connection's settings, ``None`` when turned off.

    :param enabled: the connection's ``host_cache`` extra; ``None`` defers to
        ``[functiongraph] host_cache`` (default on).
    :param directory: the connection's ``host_cache_dir`` extra; ``None`` defers to
        ``[functiongraph] host_cache_dir``, then to :func:`default_directory`.
    """
    if enabled is None:
        configured = _config("host_cache")
        enabled = configured is None or configured.lower() not in ("false", "0", "no", "off")
    if not enabled:
        return None
    path = os.path.abspath(os.path.expanduser(directory or _config("host_cache_dir") or default_directory()))
    with _STORES_GUARD:
        store = _STORES.get(path)
        if store is None:
            store = _STORES[path] = HostStore(path)
        return store
