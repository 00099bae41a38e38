"""Asynchronous invoke, status records and cancellation (PROTOCOL.md section 5)."""

from __future__ import annotations

import json
import time

from airflow_provider_fgs.protocol.async_invoke import (
    AsyncInvocationStatus,
    parse_async_invoke_response,
    parse_async_status_response,
)
from tests.emulator.conftest import Client, function_url


def start(client: Client, name: str, event: object) -> str:
    response = client.post(function_url(client.emu, name, "invocations-async"), event)
    assert response.status_code == 202, response.text
    return parse_async_invoke_response(
        response.status_code, response.headers, response.content, function=name
    )


def status(client: Client, name: str, request_id: str) -> AsyncInvocationStatus | None:
    response = client.get(
        function_url(client.emu, name, "async-invocations"), params={"request_id": request_id}
    )
    return parse_async_status_response(
        response.status_code, response.headers, response.content, request_id=request_id, function=name
    )


def wait_for(client: Client, name: str, request_id: str, states: set[str]) -> AsyncInvocationStatus:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = status(client, name, request_id)
        if record is not None and record.status in states:
            return record
        time.sleep(0.02)
    raise AssertionError(f"{request_id} never reached {states}")


def test_async_success(client: Client) -> None:
    request_id = start(client, "hello", {"name": "later"})
    record = wait_for(client, "hello", request_id, {"SUCCESS", "FAIL"})
    assert record.is_success
    assert record.start_time
    assert record.end_time


def test_async_failure_reports_the_error(client: Client) -> None:
    request_id = start(client, "fail", {"value": "async"})
    record = wait_for(client, "fail", request_id, {"SUCCESS", "FAIL"})
    assert record.is_failed
    assert record.error_message == "bad input: 'async'"
    assert record.error_code


def test_running_then_success(client: Client) -> None:
    request_id = start(client, "sleep", {"seconds": 1.5})
    assert wait_for(client, "sleep", request_id, {"WAIT", "RUNNING", "SUCCESS"}).status in {"WAIT", "RUNNING"}
    assert wait_for(client, "sleep", request_id, {"RUNNING", "SUCCESS"}).status == "RUNNING"
    assert wait_for(client, "sleep", request_id, {"SUCCESS", "FAIL"}).status == "SUCCESS"


def test_unknown_request_id_has_no_record(client: Client) -> None:
    assert status(client, "hello", "00000000-0000-0000-0000-000000000000") is None


def test_listing_without_request_id(fresh_client: Client) -> None:
    ids = {start(fresh_client, "hello", {}) for _ in range(3)}
    for request_id in ids:
        wait_for(fresh_client, "hello", request_id, {"SUCCESS"})
    response = fresh_client.get(
        function_url(fresh_client.emu, "hello", "async-invocations"), params={"limit": 2}
    )
    body = response.json()
    assert body["count"] == 3
    assert len(body["invocations"]) == 2
    assert body["next_marker"] == 2
    rest = fresh_client.get(
        function_url(fresh_client.emu, "hello", "async-invocations"), params={"limit": 2, "marker": 2}
    ).json()
    assert {i["request_id"] for i in body["invocations"] + rest["invocations"]} == ids
    bad = fresh_client.get(
        function_url(fresh_client.emu, "hello", "async-invocations"), params={"limit": "x"}
    )
    assert bad.status_code == 400


def test_async_body_over_256_kb_is_413(client: Client) -> None:
    response = client.post(function_url(client.emu, "hello", "invocations-async"), {"x": "y" * (256 * 1024)})
    assert response.status_code == 413
    assert response.json()["error_code"] == "FSS.0413"


def test_async_unknown_function_is_404(client: Client) -> None:
    response = client.post(function_url(client.emu, "nope", "invocations-async"), {})
    assert response.status_code == 404
    assert response.json()["error_code"] == "FSS.1051"


def test_cancel_a_running_invocation(client: Client) -> None:
    request_id = start(client, "sleep", {"seconds": 20})
    wait_for(client, "sleep", request_id, {"RUNNING"})
    url = function_url(client.emu, "sleep", "cancel")
    response = client.post(url, {"request_id": request_id, "type": "force"})
    assert response.status_code == 200
    assert wait_for(client, "sleep", request_id, {"DISCARD", "SUCCESS", "FAIL"}).status == "DISCARD"
    again = client.post(url, {"request_id": request_id})
    assert again.status_code == 400
    assert client.post(url, {"request_id": "unknown"}).status_code == 404
    assert client.post(url, {}).status_code == 400


def test_async_result_of_sync_and_async_agree(client: Client) -> None:
    sync = json.loads(client.invoke("hello", {"name": "same"}).json()["result"])
    assert sync["message"] == "Hello, same!"
