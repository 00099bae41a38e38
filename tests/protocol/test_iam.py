from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from airflow_provider_fgs.protocol.errors import AuthenticationError, InvalidRequestError, ThrottledError
from airflow_provider_fgs.protocol.iam import (
    build_assume_role_token_request,
    build_password_token_request,
    parse_timestamp,
    parse_token_response,
)


def test_password_request_scoped_by_project_id() -> None:
    request = build_password_token_request(
        "https://iam.example/", domain_name="acct", user_name="bob", password="pw-secret", project_id="p1"
    )
    assert request.method == "POST"
    assert request.url == "https://iam.example/v3/auth/tokens?nocatalog=true"
    assert request.headers["Content-Type"].startswith("application/json")
    assert json.loads(request.body) == {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"domain": {"name": "acct"}, "name": "bob", "password": "pw-secret"}},
            },
            "scope": {"project": {"id": "p1"}},
        }
    }


def test_password_request_scope_rules() -> None:
    by_name = build_password_token_request(
        "https://iam.example", domain_name="a", user_name="u", password="p", project_name="ap-southeast-1"
    )
    assert json.loads(by_name.body)["auth"]["scope"] == {"project": {"name": "ap-southeast-1"}}
    with pytest.raises(InvalidRequestError, match="not both"):
        build_password_token_request(
            "https://iam.example",
            domain_name="a",
            user_name="u",
            password="p",
            project_id="1",
            project_name="n",
        )
    with pytest.raises(InvalidRequestError, match="project scope"):
        build_password_token_request("https://iam.example", domain_name="a", user_name="u", password="p")
    with pytest.raises(InvalidRequestError, match="domain_name"):
        build_password_token_request(
            "https://iam.example", domain_name="", user_name="u", password="p", project_id="1"
        )


def test_assume_role_request() -> None:
    request = build_assume_role_token_request(
        "https://iam.example", caller_token="CALLER", domain_name="owner", agency_name="ops", project_id="p1"
    )
    assert request.headers["X-Auth-Token"] == "CALLER"
    assert json.loads(request.body)["auth"]["identity"] == {
        "methods": ["assume_role"],
        "assume_role": {"domain_name": "owner", "agency_name": "ops"},
    }


def test_parse_201_answer() -> None:
    body = json.dumps(
        {
            "token": {
                "expires_at": "2020-01-04T09:05:22.701000Z",
                "issued_at": "2020-01-03T09:05:22.701000Z",
                "project": {"id": "p1", "name": "ap-southeast-1"},
            }
        }
    ).encode()
    token = parse_token_response(201, {"x-subject-token": "TOKENVALUE"}, body)
    assert token.value == "TOKENVALUE"
    assert token.expires_at == datetime(2020, 1, 4, 9, 5, 22, 701000, tzinfo=UTC)
    assert token.issued_at == datetime(2020, 1, 3, 9, 5, 22, 701000, tzinfo=UTC)
    assert token.project_id == "p1"
    assert "TOKENVALUE" not in repr(token)


def test_parse_without_expiry_uses_a_short_fallback() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    token = parse_token_response(201, {"X-Subject-Token": "T"}, b"{}", now=now)
    assert token.expires_at == datetime(2024, 1, 1, 1, tzinfo=UTC)


def test_rejections_are_authentication_errors_naming_the_principal() -> None:
    body = (
        b'{"error": {"code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"}}'
    )
    with pytest.raises(AuthenticationError) as info:
        parse_token_response(401, {"X-Request-Id": "rq"}, body, who="IAM user 'bob'")
    message = str(info.value)
    assert message.startswith("IAM rejected IAM user 'bob': HTTP 401: The username")
    assert "The username or password is wrong." in message
    assert info.value.request_id == "rq"


def test_missing_token_header_and_throttling() -> None:
    with pytest.raises(AuthenticationError, match="X-Subject-Token"):
        parse_token_response(201, {}, b"{}")
    with pytest.raises(ThrottledError):
        parse_token_response(429, {}, b"")


def test_parse_timestamp_variants() -> None:
    assert parse_timestamp("2024-01-01T00:00:00Z") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_timestamp("2024-01-01T08:00:00+08:00") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_timestamp("2024-01-01T00:00:00") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_timestamp("garbage") is None
    assert parse_timestamp(None) is None


def test_huawei_style_refusals_keep_their_code_and_message() -> None:
    """IAM's docs also show ``{"error_msg", "error_code"}`` bodies (e.g. ``IAM.0011``)."""
    body = b'{"error_msg": "Request body is invalid.", "error_code": "IAM.0011"}'
    with pytest.raises(AuthenticationError) as info:
        parse_token_response(400, {}, body, who="IAM user 'bob'")
    assert (info.value.error_code, info.value.error_msg) == ("IAM.0011", "Request body is invalid.")
    assert "HTTP 400 IAM.0011: Request body is invalid." in str(info.value)
