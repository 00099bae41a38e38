"""The host cache directory's security properties: private modes, atomic records, nothing untrusted read."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from airflow_provider_fgs.client.host_cache import HostStore, host_store
from airflow_provider_fgs.client.tokens import CachedToken, SharedTokens
from airflow_provider_fgs.protocol.iam import IamToken

TOKEN_VALUE = "MIIsecret-token-value-" + "x" * 40


class PlainFernet:
    """Airflow's Fernet when no key is configured."""

    is_encrypted = False

    def encrypt(self, data: bytes) -> bytes:
        return data

    def decrypt(self, data: bytes) -> bytes:
        return data


class KeyFernet:
    """Airflow's Fernet with a key (same interface as ``airflow.sdk.crypto.get_fernet()``)."""

    is_encrypted = True

    def __init__(self, key: bytes | None = None) -> None:
        self._fernet = Fernet(key or Fernet.generate_key())

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, data: bytes) -> bytes:
        return self._fernet.decrypt(data)


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def store(directory: Path) -> Iterator[HostStore]:
    return HostStore(directory, fernet=PlainFernet())


def _token(expires_in: timedelta = timedelta(hours=24)) -> CachedToken:
    now = datetime.now(UTC)
    return CachedToken.of(IamToken(TOKEN_VALUE, now + expires_in, now, "p1"), fetched_at=now)


def _record_path(store: HostStore, key: str = "k") -> Path:
    return store.directory / f"{SharedTokens(store).name(key)}.json"


def test_directory_is_0700_and_records_0600_named_by_a_hash(store: HostStore) -> None:
    SharedTokens(store).put("the-key", _token())
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    files = sorted(store.directory.iterdir())
    records = [f for f in files if f.suffix == ".json"]
    assert len(records) == 1
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert "the-key" not in records[0].name
    assert not [f for f in files if f.name.endswith(".tmp")], "the temporary file was renamed"
    cached = SharedTokens(store).get("the-key", datetime.now(UTC))
    assert cached is not None
    assert cached.value == TOKEN_VALUE


def test_an_existing_group_readable_directory_is_made_private(directory: Path) -> None:
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    store = HostStore(directory, fernet=PlainFernet())
    assert store.usable
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700


def test_a_symlinked_directory_is_not_used(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "cache"
    link.symlink_to(target)
    store = HostStore(link, fernet=PlainFernet())
    assert not store.usable
    SharedTokens(store).put("k", _token())
    assert list(target.iterdir()) == []


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b'{"value": "abc"', b"\xff\xfe garbage", b"[1, 2, 3]", b'{"value": 3}', b'"just a string"'],
    ids=["empty", "truncated-brace", "truncated-record", "binary", "list", "wrong-type", "string"],
)
def test_a_corrupt_or_truncated_record_is_ignored_and_replaced(store: HostStore, content: bytes) -> None:
    shared = SharedTokens(store)
    shared.put("k", _token())
    path = _record_path(store)
    path.write_bytes(content)
    assert shared.get("k", datetime.now(UTC)) is None
    assert not path.exists(), "an untrusted record is removed"
    shared.put("k", _token())
    assert shared.get("k", datetime.now(UTC)) is not None


def test_a_record_with_group_or_other_permissions_is_not_trusted(store: HostStore) -> None:
    shared = SharedTokens(store)
    shared.put("k", _token())
    os.chmod(_record_path(store), 0o644)
    assert shared.get("k", datetime.now(UTC)) is None


def test_a_symlink_in_place_of_a_record_is_not_followed(store: HostStore, tmp_path: Path) -> None:
    shared = SharedTokens(store)
    shared.put("k", _token())
    planted = tmp_path / "planted.json"
    planted.write_bytes(_record_path(store).read_bytes())
    os.chmod(planted, 0o600)
    _record_path(store).unlink()
    _record_path(store).symlink_to(planted)
    assert shared.get("k", datetime.now(UTC)) is None
    assert not _record_path(store).is_symlink()
    shared.put("k", _token())  # replaced by a regular file; the target is untouched
    assert not _record_path(store).is_symlink()
    assert planted.exists()


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_a_record_owned_by_another_user_is_not_trusted(store: HostStore) -> None:
    shared = SharedTokens(store)
    shared.put("k", _token())
    os.chown(_record_path(store), 65534, 65534)
    assert shared.get("k", datetime.now(UTC)) is None


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user needs root")
def test_a_directory_owned_by_another_user_is_not_used(directory: Path) -> None:
    directory.mkdir(mode=0o700)
    os.chown(directory, 65534, 65534)
    assert not HostStore(directory, fernet=PlainFernet()).usable


def test_an_expired_token_is_never_used_even_if_its_record_says_otherwise(store: HostStore) -> None:
    shared = SharedTokens(store)
    now = datetime.now(UTC)
    token = IamToken(TOKEN_VALUE, now - timedelta(seconds=1), now - timedelta(hours=1), "p1")
    # a record claiming a refresh moment after expiry (tampered, or from a buggy writer)
    shared.put("k", CachedToken(token=token, refresh_at=now + timedelta(hours=1)))
    assert shared.get("k", now) is None


def test_with_a_fernet_key_the_record_holds_no_token_in_clear(directory: Path) -> None:
    store = HostStore(directory, fernet=KeyFernet())
    shared = SharedTokens(store)
    shared.put("k", _token())
    raw = _record_path(store).read_bytes()
    assert TOKEN_VALUE.encode() not in raw
    assert b"expires_at" not in raw
    cached = shared.get("k", datetime.now(UTC))
    assert cached is not None
    assert cached.value == TOKEN_VALUE


def test_a_record_not_encrypted_with_this_key_is_ignored_and_replaced(directory: Path) -> None:
    other = SharedTokens(HostStore(directory, fernet=KeyFernet()))
    other.put("k", _token())  # another key (rotated, or another Airflow)
    plain = HostStore(directory, fernet=PlainFernet())
    ours = SharedTokens(HostStore(directory, fernet=KeyFernet()))
    assert ours.get("k", datetime.now(UTC)) is None
    SharedTokens(plain).put("k", _token())  # a clear record where an encrypted one is expected
    assert ours.get("k", datetime.now(UTC)) is None
    assert not _record_path(ours.store).exists()


def test_airflows_fernet_key_is_used_when_configured(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_fgs import compat

    key = Fernet.generate_key()
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", key.decode())
    _clear_fernet_cache()
    try:
        store = HostStore(directory)
        assert store.encrypted
        SharedTokens(store).put("k", _token())
        raw = _record_path(store).read_bytes()
        assert Fernet(key).decrypt(raw).startswith(b"{")
        assert compat.get_fernet().is_encrypted
    finally:
        monkeypatch.delenv("AIRFLOW__CORE__FERNET_KEY")
        _clear_fernet_cache()


def _clear_fernet_cache() -> None:
    from airflow_provider_fgs import compat

    if compat.AIRFLOW_V_3_2_PLUS:
        from airflow.sdk.crypto import get_fernet

        get_fernet.cache_clear()
    else:  # Airflow 3.1 keeps it in a module global
        import airflow.models.crypto

        airflow.models.crypto._fernet = None  # type: ignore[attr-defined]


def test_invalidate_removes_only_the_rejected_token(store: HostStore) -> None:
    shared = SharedTokens(store)
    shared.put("k", _token())
    shared.invalidate("k", "some-other-token")
    assert shared.get("k", datetime.now(UTC)) is not None
    shared.invalidate("k", TOKEN_VALUE)
    assert shared.get("k", datetime.now(UTC)) is None


def test_settings_turn_it_off_or_move_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert host_store(False, str(tmp_path / "a")) is None
    store = host_store(None, str(tmp_path / "b"))
    assert store is not None
    assert store.directory == tmp_path / "b"
    monkeypatch.setenv("AIRFLOW__FUNCTIONGRAPH__HOST_CACHE", "false")
    assert host_store(None, None) is None
    assert host_store(True, str(tmp_path / "c")) is not None  # the connection's extra wins
    monkeypatch.setenv("AIRFLOW__FUNCTIONGRAPH__HOST_CACHE", "true")
    monkeypatch.setenv("AIRFLOW__FUNCTIONGRAPH__HOST_CACHE_DIR", str(tmp_path / "d"))
    configured = host_store(None, None)
    assert configured is not None
    assert configured.directory == tmp_path / "d"
