from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from airflow_provider_fgs.protocol.errors import (
    AuthenticationError,
    FunctionGraphApiError,
    NotFoundError,
    RequestRejectedError,
    ServiceUnavailableError,
    ThrottledError,
)
from airflow_provider_fgs.protocol.http import (
    functions_url,
    is_token_rejected,
    parse_retry_after,
    platform_error,
)


def test_functions_url_encodes_the_urn_as_one_segment() -> None:
    url = functions_url("https://fg.example/", "p1", "urn:fss:r:p1:function:default:f:latest", "invocations")
    assert (
        url
        == "https://fg.example/v2/p1/fgs/functions/urn%3Afss%3Ar%3Ap1%3Afunction%3Adefault%3Af%3Alatest/invocations"
    )


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, "FSS.0429", ThrottledError),
        (401, "APIG.0308", ThrottledError),
        (503, "FSS.0503", ServiceUnavailableError),
        (500, "FSS.0500", ServiceUnavailableError),
        (400, "FSS.1115", ServiceUnavailableError),
        (401, "APIG.0301", AuthenticationError),
        (404, "FSS.1051", NotFoundError),
        (400, "FSS.0400", RequestRejectedError),
        (413, "FSS.0413", RequestRejectedError),
        (403, "FSS.0403", FunctionGraphApiError),
    ],
)
def test_platform_error_types(status: int, code: str, expected: type[Exception]) -> None:
    body = f'{{"error_code": "{code}", "error_msg": "nope"}}'.encode()
    error = platform_error(status, {"X-Cff-Request-Id": "rid-1"}, body, what="invoke of f")
    assert type(error) is expected
    assert (error.http_status, error.error_code, error.error_msg, error.request_id) == (
        status,
        code,
        "nope",
        "rid-1",
    )
    assert f"HTTP {status} {code}: nope (request id rid-1)" in str(error)


def test_platform_error_reads_keystone_bodies_and_retry_after() -> None:
    body = (
        b'{"error": {"code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"}}'
    )
    error = platform_error(401, {"Retry-After": "3"}, body, what="token")
    assert isinstance(error, AuthenticationError)
    assert error.error_code == "401"
    assert error.error_msg == "The username or password is wrong."
    assert error.retry_after == 3.0


def test_platform_error_with_non_json_body_keeps_a_preview() -> None:
    error = platform_error(502, {}, b"<html>Bad Gateway</html>", what="invoke")
    assert isinstance(error, ServiceUnavailableError)
    assert error.error_msg == "<html>Bad Gateway</html>"
    assert error.error_code is None


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Mon, 01 Jan 2024 00:00:10 GMT", now=now) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [
        (401, "APIG.0301", True),
        (404, "FSS.1051", True),
        (400, "FSS.0400", True),
        (413, "FSS.0413", True),
        (429, "FSS.0429", False),
        (503, "FSS.0503", False),
        (500, "FSS.0500", False),
        (504, "FSS.0504", False),
        (403, "FSS.0403", False),
    ],
)
def test_only_failures_no_retry_can_fix_fail_the_task_without_airflow_retries(
    status: int, code: str, permanent: bool
) -> None:
    from airflow_provider_fgs.compat import AirflowFailException

    body = f'{{"error_code": "{code}", "error_msg": "nope"}}'.encode()
    error = platform_error(status, {}, body, what="invoke of f")
    assert isinstance(error, AirflowFailException) is permanent
    assert isinstance(error, FunctionGraphApiError)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, "APIGW.0308", ThrottledError),
        (400, "APIGW.0308", ThrottledError),
        (401, "APIGW.0301", AuthenticationError),
        (401, "APIG.0303", AuthenticationError),
        (403, "APIGW.0303", AuthenticationError),
    ],
)
def test_apigw_codes_are_known_alongside_apig(status: int, code: str, expected: type) -> None:
    body = json.dumps({"error_code": code, "error_msg": "gateway says no"}).encode()
    assert type(platform_error(status, {}, body, what="invoke")) is expected


@pytest.mark.parametrize(
    ("status", "body", "rejected"),
    [
        (401, b"", True),
        (403, b'{"error_code": "FSS.0403", "error_msg": "invalid token"}', True),
        (
            403,
            b'{"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication information: token"}',
            True,
        ),
        (403, b'{"error_code": "FSS.0403", "error_msg": "Forbidden: no permission for the function"}', False),
        (403, b"not json", False),
        (404, b'{"error_code": "FSS.0403", "error_msg": "invalid token"}', False),
    ],
)
def test_token_rejection_is_401_or_403_invalid_token(status: int, body: bytes, rejected: bool) -> None:
    assert is_token_rejected(status, body) is rejected
