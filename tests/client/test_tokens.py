"""Token cache, refresh moments and request authentication (the pure parts of tokens and credentials)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from airflow.sdk import Connection

from airflow_provider_fgs.client.credentials import authenticate
from airflow_provider_fgs.client.settings import FunctionGraphSettings, parse_connection
from airflow_provider_fgs.client.tokens import (
    REFRESH_MARGIN,
    CachedToken,
    TokenCache,
    token_request,
)
from airflow_provider_fgs.protocol.http import HttpRequest
from airflow_provider_fgs.protocol.iam import IamToken
from airflow_provider_fgs.protocol.signing import compute_signature, parse_authorization

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _token(value: str, lifetime: timedelta) -> IamToken:
    return IamToken(value=value, expires_at=NOW + lifetime, issued_at=NOW)


def test_day_long_token_is_refreshed_forty_minutes_early() -> None:
    cached = CachedToken.of(_token("t", timedelta(hours=24)), fetched_at=NOW)
    assert cached.refresh_at == NOW + timedelta(hours=24) - REFRESH_MARGIN
    assert cached.is_fresh(NOW + timedelta(hours=23))
    assert not cached.is_fresh(NOW + timedelta(hours=23, minutes=21))


def test_short_token_is_refreshed_after_three_quarters_of_its_life() -> None:
    cached = CachedToken.of(_token("t", timedelta(seconds=8)), fetched_at=NOW)
    assert cached.refresh_at == NOW + timedelta(seconds=6)


def test_server_clock_ahead_does_not_stretch_the_lifetime() -> None:
    token = IamToken(value="t", expires_at=NOW + timedelta(seconds=8), issued_at=NOW + timedelta(seconds=4))
    # issued "in the future": the lifetime is counted from when we fetched it
    assert CachedToken.of(token, fetched_at=NOW).refresh_at == NOW + timedelta(seconds=6)


def test_cache_returns_only_fresh_tokens_and_invalidates_by_value() -> None:
    cache = TokenCache()
    cache.put("k", CachedToken.of(_token("one", timedelta(hours=1)), fetched_at=NOW))
    assert cache.get("k", NOW) is not None
    assert cache.get("k", NOW + timedelta(hours=1)) is None
    assert cache.get("other", NOW) is None
    cache.invalidate("k", "stale-value")  # another caller already replaced it: keep
    assert cache.get("k", NOW) is not None
    cache.invalidate("k", "one")
    assert cache.get("k", NOW) is None


def test_lock_for_is_one_lock_per_key() -> None:
    cache = TokenCache()
    locks: list[threading.Lock] = []
    threads = [threading.Thread(target=lambda: locks.append(cache.lock_for("k"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(lock) for lock in locks}) == 1
    assert cache.lock_for("k") is not cache.lock_for("j")


def _settings(**extra: object) -> FunctionGraphSettings:
    return parse_connection(
        Connection(
            conn_id="fg",
            conn_type="functiongraph",
            login=str(extra.pop("login", "AK123")),
            password=str(extra.pop("password", "sk-secret")),
            extra=json.dumps({"region": "ap-southeast-1", "project_id": "p1", **extra}),
        )
    )


def test_aksk_requests_are_signed_verifiably() -> None:
    settings = _settings(security_token="sts-token")
    request = HttpRequest("POST", "https://fg.example/v2/p1/fgs/functions?x=1", {"X-Project-Id": "p1"}, b"{}")
    signed = authenticate(request, settings, now=NOW)
    assert signed.headers["X-Security-Token"] == "sts-token"
    parsed = parse_authorization(signed.headers["Authorization"])
    assert parsed is not None
    assert parsed.access_key == "AK123"
    assert parsed.signature == compute_signature(
        method="POST",
        path="/v2/p1/fgs/functions",
        query=[("x", "1")],
        headers=signed.headers,
        signed_headers=parsed.signed_headers,
        body=b"{}",
        sdk_date="20240101T000000Z",
        secret_key="sk-secret",
    )
    assert "X-Auth-Token" not in signed.headers
    assert request.headers == {"X-Project-Id": "p1"}  # the built request is not modified


def test_token_requests_carry_x_auth_token() -> None:
    settings = _settings(login="bob", password="pw", domain_name="acct")
    request = HttpRequest("GET", "https://fg.example/x")
    assert authenticate(request, settings, token="TOKEN").headers == {"X-Auth-Token": "TOKEN"}
    body = json.loads(token_request(settings).body)
    assert body["auth"]["identity"]["password"]["user"] == {
        "domain": {"name": "acct"},
        "name": "bob",
        "password": "pw",
    }
    assert body["auth"]["scope"] == {"project": {"id": "p1"}}
