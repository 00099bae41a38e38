"""Injected faults: throttling, 503, latency, dropped or cut connections, broken answers."""

from __future__ import annotations

import base64
import binascii
import json

import pytest
import requests

from airflow_provider_fgs.emulator.faults import parse_fault_spec
from tests.emulator.conftest import Client, function_url, get_token, token_body


def test_throttle_next_n_calls_with_retry_after(fresh_client: Client) -> None:
    emu = fresh_client.emu
    emu.inject_fault("throttle", count=2, retry_after=1.5)
    first, second, third = (fresh_client.invoke("hello", {}) for _ in range(3))
    for response in (first, second):
        assert response.status_code == 429
        assert response.json()["error_code"] == "FSS.0429"
        assert response.headers["Retry-After"] == "1.5"
    assert third.status_code == 200
    assert emu.invocation_count() == 1
    assert emu.request_count("invoke") == 3


def test_unavailable(fresh_client: Client) -> None:
    fresh_client.emu.inject_fault("unavailable")
    response = fresh_client.invoke("hello", {})
    assert (response.status_code, response.json()["error_code"]) == (503, "FSS.0503")
    assert "Retry-After" not in response.headers
    assert fresh_client.invoke("hello", {}).status_code == 200


def test_latency_then_normal_answer(fresh_client: Client) -> None:
    fresh_client.emu.inject_fault("latency", delay=0.2)
    assert fresh_client.invoke("hello", {}).status_code == 200
    assert fresh_client.emu.invocation_count() == 1


def test_drop_closes_the_connection_without_an_answer(fresh_client: Client) -> None:
    emu = fresh_client.emu
    emu.inject_fault("drop")
    with pytest.raises(requests.ConnectionError):
        requests.post(
            function_url(emu, "hello"), json={}, headers={"X-Auth-Token": fresh_client.token}, timeout=10
        )
    assert emu.invocation_count() == 0
    assert fresh_client.invoke("hello", {}).status_code == 200


def test_drop_after_runs_the_function_then_closes(fresh_client: Client) -> None:
    emu = fresh_client.emu
    emu.inject_fault("drop_after", function="hello")
    with pytest.raises(requests.ConnectionError):
        requests.post(
            function_url(emu, "hello"), json={}, headers={"X-Auth-Token": fresh_client.token}, timeout=10
        )
    assert emu.invocation_count("hello") == 1


def test_fault_for_one_function_only(fresh_client: Client) -> None:
    fresh_client.emu.inject_fault("throttle", count=None, function="echo")
    assert fresh_client.invoke("hello", {}).status_code == 200
    assert fresh_client.invoke("echo", {}).status_code == 429
    assert fresh_client.invoke("echo", {}).status_code == 429
    fresh_client.emu.clear_faults()
    assert fresh_client.invoke("echo", {}).status_code == 200


def test_fault_for_one_route_only(fresh_client: Client) -> None:
    emu = fresh_client.emu
    emu.inject_fault("unavailable", route="invoke_async")
    assert fresh_client.invoke("hello", {}).status_code == 200
    assert fresh_client.post(function_url(emu, "hello", "invocations-async"), {}).status_code == 503


def test_faults_do_not_touch_iam(fresh_client: Client) -> None:
    fresh_client.emu.inject_fault("unavailable", count=None)
    response = requests.post(
        f"{fresh_client.emu.url}/v3/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "domain": {"name": "demo-domain"},
                            "name": "demo-user",
                            "password": "demo-password",
                        }
                    },
                }
            }
        },
        timeout=10,
    )
    assert response.status_code == 201


def test_bad_fault_arguments(fresh_client: Client) -> None:
    with pytest.raises(ValueError, match="kind"):
        fresh_client.emu.inject_fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count"):
        fresh_client.emu.inject_fault("throttle", count=0)


def test_parse_fault_spec() -> None:
    fault = parse_fault_spec("throttle,count=3,function=hello,retry_after=2")
    assert (fault.kind, fault.remaining, fault.function, fault.retry_after) == ("throttle", 3, "hello", 2.0)
    assert parse_fault_spec("latency,delay=0.5,count=always").remaining is None
    for kind in ("truncate", "garbage", "bad_log"):
        assert parse_fault_spec(f"{kind},function=hello").kind == kind
    assert parse_fault_spec("drop,route=token").route == "token"
    for bad in ("boom", "throttle,count", "throttle,count=x", "drop,colour=red"):
        with pytest.raises(ValueError, match="fault"):
            parse_fault_spec(bad)


def test_truncate_sends_headers_and_half_the_body_then_closes(fresh_client: Client) -> None:
    emu = fresh_client.emu
    emu.inject_fault("truncate", function="hello")
    response = requests.post(
        function_url(emu, "hello"),
        json={},
        headers={"X-Auth-Token": fresh_client.token, "X-CFF-Request-Version": "v1"},
        timeout=10,
        stream=True,
    )
    assert response.status_code == 200  # the status line and headers arrived
    assert response.headers["X-Cff-Request-Id"]
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        response.content  # noqa: B018  # reading the body fails
    assert emu.invocation_count("hello") == 1


def test_garbage_answers_200_with_a_body_neither_json_nor_utf8(fresh_client: Client) -> None:
    fresh_client.emu.inject_fault("garbage", function="hello")
    response = fresh_client.invoke("hello", {})
    assert response.status_code == 200
    assert response.headers["X-Cff-Request-Id"]  # the function ran; only its answer is broken
    with pytest.raises(UnicodeDecodeError):
        response.content.decode("utf-8")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content.decode("utf-8", errors="replace"))
    assert fresh_client.invoke("hello", {}).json()["status"] == 200


def test_bad_log_cuts_the_base64_log_header(fresh_client: Client) -> None:
    fresh_client.emu.inject_fault("bad_log")
    response = fresh_client.invoke("hello", {"name": "Ada"})
    assert response.status_code == 200
    assert response.json()["result"]  # the rest of the answer is intact
    with pytest.raises(binascii.Error):
        base64.b64decode(response.headers["X-Cff-Function-Log"] + "===", validate=True)


def test_faults_hit_iam_only_when_the_token_route_is_named(fresh_client: Client) -> None:
    emu = fresh_client.emu
    emu.inject_fault("unavailable", count=2, route="token", retry_after=0.5)
    for _ in range(2):
        refused = requests.post(
            f"{emu.url}/v3/auth/tokens", json=token_body({"id": emu.project_id}), timeout=10
        )
        assert (refused.status_code, refused.headers["Retry-After"]) == (503, "0.5")
        assert refused.json()["error_code"] == "FSS.0503"
        assert fresh_client.invoke("hello", {}).status_code == 200  # FunctionGraph routes are untouched
    assert get_token(emu)  # the fault is used up
    assert emu.request_count("token") == 4  # the fixture's token, two refused, this one
