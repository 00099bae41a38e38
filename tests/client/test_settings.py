"""Parsing a ``functiongraph`` Airflow connection into typed settings (pure, real SDK Connection objects)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_provider_fgs.client.settings import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    parse_connection,
)
from airflow_provider_fgs.protocol.errors import InvalidRequestError

REGION = "ap-southeast-1"
PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SECRET = "sk-secret-value"


def _conn(
    login: str | None = None, password: str | None = None, host: str | None = None, **extra: Any
) -> Connection:
    return Connection(
        conn_id="fg",
        conn_type="functiongraph",
        login=login,
        password=password,
        host=host,
        extra=json.dumps(extra),
    )


def test_aksk_inferred_with_default_endpoints_and_safe_defaults() -> None:
    settings = parse_connection(_conn("AK123", "SK-very-secret", region=REGION, project_id=PROJECT))
    assert settings.auth_type == "aksk"
    assert (settings.access_key, settings.secret_key) == ("AK123", "SK-very-secret")
    assert settings.endpoint == f"https://functiongraph.{REGION}.myhuaweicloud.com"
    assert settings.iam_endpoint == f"https://iam.{REGION}.myhuaweicloud.com"
    assert settings.verify is True
    assert settings.timeouts == (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
    assert settings.retry.retry_sync_invoke is False
    assert settings.proxies == {}


def test_password_inferred_from_domain_name() -> None:
    settings = parse_connection(
        _conn("bob", "pw-secret-value", region=REGION, project_id=PROJECT, domain_name="acct")
    )
    assert settings.auth_type == "password"
    assert (settings.domain_name, settings.user_name, settings.password) == ("acct", "bob", "pw-secret-value")


def test_password_mode_may_scope_by_project_name_only() -> None:
    settings = parse_connection(_conn("bob", "pw", region=REGION, project_name=REGION, domain_name="acct"))
    assert settings.project_id is None
    assert settings.project_name == REGION


def test_token_inferred_from_token_extra() -> None:
    settings = parse_connection(_conn(region=REGION, project_id=PROJECT, token="tok-value-123"))
    assert settings.auth_type == "token"
    assert settings.token == "tok-value-123"


def test_explicit_auth_type_wins_and_security_token_is_read() -> None:
    settings = parse_connection(
        _conn(
            "AK", "SK-secret", region=REGION, project_id=PROJECT, auth_type="AKSK", security_token="sts-123"
        )
    )
    assert settings.auth_type == "aksk"
    assert settings.security_token == "sts-123"


def test_overrides_and_string_values() -> None:
    settings = parse_connection(
        _conn(
            "AK",
            "SK",
            region=REGION,
            project_id=PROJECT,
            endpoint="http://127.0.0.1:9000/",
            iam_endpoint="iam.internal",
            verify="false",
            proxies="http://proxy:3128",
            connect_timeout="2.5",
            read_timeout=30,
            retry_attempts="0",
            retry_sync_invoke="true",
        )
    )
    assert settings.endpoint == "http://127.0.0.1:9000"
    assert settings.iam_endpoint == "https://iam.internal"
    assert settings.verify is False
    assert settings.proxies == {"http": "http://proxy:3128", "https": "http://proxy:3128"}
    assert settings.timeouts == (2.5, 30.0)
    assert settings.retry.attempts == 0
    assert settings.retry.retry_sync_invoke is True


def test_verify_ca_bundle_and_proxy_mapping() -> None:
    settings = parse_connection(
        _conn(
            "AK",
            "SK",
            region=REGION,
            project_id=PROJECT,
            verify="/etc/ca.pem",
            proxies={"https": "http://p:1"},
        )
    )
    assert settings.verify == "/etc/ca.pem"
    assert settings.proxies == {"https": "http://p:1"}


def test_host_and_port_give_the_endpoint() -> None:
    conn = Connection(
        conn_id="fg",
        conn_type="functiongraph",
        login="AK",
        password="SK",
        host="fg.example",
        port=8443,
        extra=json.dumps({"region": REGION, "project_id": PROJECT}),
    )
    assert parse_connection(conn).endpoint == "https://fg.example:8443"


@pytest.mark.parametrize(
    ("conn", "named"),
    [
        (_conn("AK", SECRET, project_id=PROJECT), "extra 'region' is required"),
        (_conn("AK", SECRET, region=REGION), "extra 'project_id' is required"),
        (_conn("AK", SECRET, region=REGION, project_id=PROJECT, auth_type="chain"), "must be empty"),
        (
            _conn(region=REGION, project_id=PROJECT, auth_type="metadata", sts_endpoint="ftp://x"),
            "sts_endpoint",
        ),
        (
            _conn("AK", None, region=REGION, project_id=PROJECT, auth_type="aksk"),
            "password must hold the secret key",
        ),
        (
            _conn(None, SECRET, region=REGION, project_id=PROJECT, auth_type="aksk"),
            "login must hold the access key",
        ),
        (_conn("u", "p", region=REGION, project_id=PROJECT, auth_type="password"), "extra 'domain_name'"),
        (_conn(None, "p", region=REGION, project_id=PROJECT, domain_name="d"), "IAM user name"),
        (_conn(region=REGION, project_id=PROJECT, auth_type="token"), "extra 'token' is required"),
        (_conn("AK", SECRET, region=REGION, project_id=PROJECT, auth_type="oauth"), "extra 'auth_type'"),
        (_conn("AK", SECRET, region=REGION, project_id=PROJECT, verify="maybe?"), None),
        (
            _conn("AK", SECRET, region=REGION, project_id=PROJECT, connect_timeout="soon"),
            "extra 'connect_timeout'",
        ),
        (_conn("AK", SECRET, region=REGION, project_id=PROJECT, read_timeout=0), "extra 'read_timeout'"),
        (_conn("AK", SECRET, region=REGION, project_id=PROJECT, retry_attempts=-1), "extra 'retry_attempts'"),
        (
            _conn("AK", SECRET, region=REGION, project_id=PROJECT, retry_sync_invoke="sure"),
            "extra 'retry_sync_invoke'",
        ),
        (_conn("AK", SECRET, region=REGION, project_id=PROJECT, proxies=["x"]), "extra 'proxies'"),
        (_conn("AK", SECRET, region=REGION, project_id=PROJECT, endpoint="ftp://x"), "extra 'endpoint'"),
    ],
)
def test_bad_connections_name_the_field(conn: Connection, named: str | None) -> None:
    if named is None:  # a non-boolean verify string is a CA bundle path, not an error
        assert parse_connection(conn).verify == "maybe?"
        return
    with pytest.raises(InvalidRequestError, match=named) as info:
        parse_connection(conn)
    assert "'fg'" in str(info.value)
    assert SECRET not in str(info.value).replace("SK)", "")


def test_no_stored_secret_means_the_sdks_credential_chain_with_its_region_and_project(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION", REGION)
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    settings = parse_connection(_conn(metadata_endpoint="http://127.0.0.1:9", id_token_file="/run/token"))
    assert (settings.auth_type, settings.region, settings.project_id) == ("chain", REGION, PROJECT)
    assert settings.uses_credential_sources
    assert settings.secrets == ()
    assert (settings.metadata_endpoint, settings.id_token_file) == ("http://127.0.0.1:9", "/run/token")
    # The connection's own region wins; the SDK's variables only fill what it leaves out.
    assert parse_connection(_conn(region="cn-north-4")).region == "cn-north-4"
    # A stored secret never falls back to the environment's region.
    with pytest.raises(InvalidRequestError, match="extra 'region' is required"):
        parse_connection(_conn("AK", SECRET, project_id=PROJECT))


def test_the_profiles_project_serves_a_connection_that_names_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HUAWEICLOUD_SDK_PROJECT_ID", raising=False)
    profile = tmp_path / "credentials"
    profile.write_text(f"[basic]\nak = AK\nsk = {SECRET}\nproject_id = {PROJECT}\n", encoding="utf-8")
    settings = parse_connection(_conn(region=REGION, credentials_file=str(profile)))
    assert settings.project_id == PROJECT
    with pytest.raises(InvalidRequestError, match=r"\(or HUAWEICLOUD_SDK_PROJECT_ID\) is required"):
        parse_connection(_conn(region=REGION, credentials_file=str(profile), auth_type="env"))


def test_secrets_are_listed_and_kept_out_of_repr() -> None:
    aksk = parse_connection(
        _conn("AK123", "SK-very-secret", region=REGION, project_id=PROJECT, security_token="sts-very-secret")
    )
    password = parse_connection(
        _conn("bob", "pw-very-secret", region=REGION, project_id=PROJECT, domain_name="d")
    )
    token = parse_connection(_conn(region=REGION, project_id=PROJECT, token="tok-very-secret"))
    assert set(aksk.secrets) == {"SK-very-secret", "sts-very-secret"}
    assert password.secrets == ("pw-very-secret",)
    assert token.secrets == ("tok-very-secret",)
    for settings in (aksk, password, token):
        text = repr(settings) + settings.principal + settings.token_cache_key
        assert "very-secret" not in text


def test_token_cache_key_follows_the_credentials() -> None:
    def key(**extra: Any) -> str:
        base = {"region": REGION, "project_id": PROJECT, "domain_name": "d"}
        return parse_connection(
            _conn("bob", extra.pop("password", "pw"), **{**base, **extra})
        ).token_cache_key

    assert key() == key()
    assert key() != key(password="other")
    assert key() != key(project_id="other")
    assert key() != key(iam_endpoint="https://iam.other")
