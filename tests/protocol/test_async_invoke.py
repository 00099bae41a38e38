from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_fgs.protocol.async_invoke import (
    STATUS_PAGE_LIMIT,
    AsyncInvocationStatus,
    MissingRecordGuard,
    build_async_invoke_request,
    build_async_status_request,
    parse_async_invoke_response,
    parse_async_status_page,
    parse_async_status_response,
    query_begin_time_for,
)
from airflow_provider_fgs.protocol.errors import (
    AsyncRecordNotFoundError,
    FunctionGraphApiError,
    InvalidRequestError,
)
from airflow_provider_fgs.protocol.urn import FunctionUrn

URN = FunctionUrn.from_parts(region="ap-southeast-1", project_id="p1", name="hello")


def test_async_invoke_round_trip() -> None:
    request = build_async_invoke_request("https://fg.example", URN, {"a": 1})
    assert request.url.endswith("/invocations-async")
    assert json.loads(request.body) == {"a": 1}
    assert parse_async_invoke_response(202, {}, b'{"request_id": "abc"}', function="f") == "abc"
    with pytest.raises(FunctionGraphApiError, match="no request_id"):
        parse_async_invoke_response(202, {}, b"{}", function="f")
    with pytest.raises(InvalidRequestError, match="at most"):
        build_async_invoke_request("https://fg.example", URN, {"x": "y" * 300_000})


def test_async_status() -> None:
    request = build_async_status_request("https://fg.example", URN, "id 1")
    assert request.method == "GET"
    assert request.url.endswith("/async-invocations?request_id=id+1")
    body = json.dumps(
        {
            "invocations": [
                {"request_id": "other", "status": "RUNNING"},
                {"request_id": "id 1", "status": "fail", "error_message": "boom", "error_code": "FSS.1"},
            ],
            "count": 2,
        }
    ).encode()
    status = parse_async_status_response(200, {}, body, request_id="id 1", function="f")
    assert status is not None
    assert status.is_failed
    assert not status.is_pending
    assert (status.error_message, status.error_code) == ("boom", "FSS.1")
    assert parse_async_status_response(200, {}, b'{"invocations": []}', request_id="x", function="f") is None
    with pytest.raises(InvalidRequestError):
        build_async_status_request("https://fg.example", URN, "")


# -- issue 11: windows, paging, unknown statuses, the SDK's integer fields -------------------------


def _body(*items: dict[str, object], **extra: object) -> bytes:
    return json.dumps({"invocations": list(items), **extra}).encode()


@pytest.mark.parametrize("status", ["", None, "DONE", "pending"])
def test_unknown_or_empty_status_is_an_error_never_success(status: object) -> None:
    body = _body({"request_id": "r1", "status": status})
    with pytest.raises(FunctionGraphApiError, match="unknown status"):
        parse_async_status_response(200, {}, body, request_id="r1", function="f")


@pytest.mark.parametrize(
    ("code", "expected"), [(0, "0"), ("0", "0"), (3, "3"), ("FSS.0500", "FSS.0500"), ("", None)]
)
def test_error_code_as_the_sdk_or_the_docs_give_it(code: object, expected: str | None) -> None:
    body = _body(
        {"request_id": "r1", "status": "FAIL", "error_code": code, "start_time": "2024-01-01T00:00:00Z"}
    )
    record = parse_async_status_response(200, {}, body, request_id="r1", function="f")
    assert record is not None
    assert record.error_code == expected


@pytest.mark.parametrize(
    ("next_marker", "count", "expected"),
    [(2, 3, 2), ("2", "3", 2), (3, 3, None), (0, 3, None), (None, None, None), ("", 5, None)],
)
def test_next_page_from_integer_or_string_markers(
    next_marker: object, count: object, expected: int | None
) -> None:
    body = _body({"request_id": "other", "status": "SUCCESS"}, next_marker=next_marker, count=count)
    page = parse_async_status_page(200, {}, body, request_id="r1", function="f", marker=0)
    assert page.status is None
    assert page.next_marker == expected


def test_status_request_sends_the_window_and_page() -> None:
    request = build_async_status_request(
        "https://fg.example", URN, "r1", query_begin_time="2024-05-06T07:08:09.123Z", marker=100
    )
    query = parse_qs(urlsplit(request.url).query)
    assert query == {
        "request_id": ["r1"],
        "query_begin_time": ["2024-05-06T07:08:09"],
        "marker": ["100"],
        "limit": [str(STATUS_PAGE_LIMIT)],
    }
    plain = build_async_status_request("https://fg.example", URN, "r1")
    assert parse_qs(urlsplit(plain.url).query) == {"request_id": ["r1"]}


def test_query_begin_time_is_the_start_minus_a_margin() -> None:
    started = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert query_begin_time_for(started) == "2024-01-01T11:55:00"
    assert query_begin_time_for("2024-01-01T12:00:00+02:00") == "2024-01-01T09:55:00"
    assert query_begin_time_for(None) is None


def test_missing_record_guard_names_the_likely_causes() -> None:
    now = [0.0]
    guard = MissingRecordGuard(request_id="r1", function="f", timeout=10, clock=lambda: now[0])
    guard.check(None)
    now[0] = 9.0
    guard.check(None)
    guard.check(AsyncInvocationStatus(request_id="r1", status="WAIT"))  # a record resets the bound
    now[0] = 18.0
    guard.check(None)
    now[0] = 28.0
    with pytest.raises(AsyncRecordNotFoundError) as caught:
        guard.check(None)
    message = str(caught.value)
    for cause in ("persistence is disabled", "query window", "the last hour", "another function"):
        assert cause in message


def test_bad_query_time_is_refused_naming_it() -> None:
    with pytest.raises(InvalidRequestError, match=r"query_begin_time.*'last tuesday'"):
        build_async_status_request("https://fg.example", URN, "r1", query_begin_time="last tuesday")
    with pytest.raises(InvalidRequestError, match="'soon'"):
        query_begin_time_for("soon")
    assert query_begin_time_for("None") is None  # a templated XCom pull that found nothing
