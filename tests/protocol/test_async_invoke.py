from __future__ import annotations

import json

import pytest

from airflow_provider_fgs.protocol.async_invoke import (
    build_async_invoke_request,
    build_async_status_request,
    parse_async_invoke_response,
    parse_async_status_response,
)
from airflow_provider_fgs.protocol.errors import FunctionGraphApiError, InvalidRequestError
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
