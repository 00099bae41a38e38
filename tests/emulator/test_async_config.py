"""The emulator's ``GET``/``PUT .../{urn}/async-invoke-config``: a function's async settings, their effect."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.emulator.conftest import Client, function_url

ACTION = "async-invoke-config"


def show(client: Client, name: str) -> requests.Response:
    return client.get(function_url(client.emu, name, ACTION))


def put(client: Client, name: str, body: Any) -> requests.Response:
    headers = {"X-Auth-Token": client.token, "Content-Type": "application/json"}
    return client.session.put(function_url(client.emu, name, ACTION), json=body, headers=headers, timeout=30)


def start(client: Client, name: str) -> str:
    response = client.post(function_url(client.emu, name, "invocations-async"), {})
    assert response.status_code == 202, response.text
    request_id: str = response.json()["request_id"]
    return request_id


def records(client: Client, name: str, request_id: str) -> list[dict[str, Any]]:
    response = client.get(
        function_url(client.emu, name, "async-invocations"), params={"request_id": request_id}
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["invocations"]
    return found


@pytest.mark.parametrize(("name", "enabled"), [("sleep", True), ("unrecorded", False)])
def test_persistence_follows_the_functions_settings_file(client: Client, name: str, enabled: bool) -> None:
    response = show(client, name)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["enable_async_status_log"] is enabled  # unrecorded has no .json: off, the default
    assert body["func_urn"] == client.emu.urn(name)
    assert (body["max_async_event_age_in_seconds"], body["max_async_retry_attempts"]) == (3600, 1)
    assert body["created_time"].endswith("Z")


def test_a_version_and_an_alias_answer_the_functions_settings(client: Client) -> None:
    for qualifier in ("1", "!prod"):
        response = show(client, client.emu.urn("echo", qualifier))
        assert response.status_code == 200, response.text
        assert response.json()["func_urn"] == client.emu.urn("echo", qualifier)
        assert response.json()["enable_async_status_log"] is True


@pytest.mark.parametrize(
    ("name", "code"),
    [("nope", "FSS.1051"), ("urn:fss:ap-southeast-1:p:function:default:echo:9", "FSS.1051")],
)
def test_unknown_functions_are_404(client: Client, name: str, code: str) -> None:
    response = show(client, name)
    assert (response.status_code, response.json()["error_code"]) == (404, code)


@pytest.mark.parametrize(("qualifier", "code"), [("9", "FSS.1052"), ("!nope", "FSS.1053")])
def test_unknown_versions_and_aliases_are_404(client: Client, qualifier: str, code: str) -> None:
    response = show(client, client.emu.urn("echo", qualifier))
    assert (response.status_code, response.json()["error_code"]) == (404, code)


def test_credentials_are_required_and_reads_are_counted(fresh_client: Client) -> None:
    emu = fresh_client.emu
    refused = requests.get(function_url(emu, "sleep", ACTION), timeout=30)
    assert (refused.status_code, refused.json()["error_code"]) == (401, "APIG.0301")
    assert show(fresh_client, "sleep").status_code == 200
    assert emu.request_count("async_config") == 2
    assert emu.request_count("update_async_config") == 0


def test_other_methods_are_405(client: Client) -> None:
    response = client.session.delete(
        function_url(client.emu, "sleep", ACTION), headers={"X-Auth-Token": client.token}, timeout=30
    )
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, PUT"


def test_turning_persistence_on_records_the_invocations_started_afterwards(fresh_client: Client) -> None:
    before = start(fresh_client, "unrecorded")
    response = put(
        fresh_client, "unrecorded", {"enable_async_status_log": True, "max_async_retry_attempts": 0}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["enable_async_status_log"], body["max_async_retry_attempts"]) == (True, 0)
    assert body["max_async_event_age_in_seconds"] == 3600  # not given: kept
    assert body["last_modified"]
    assert show(fresh_client, "unrecorded").json() == body
    after = start(fresh_client, "unrecorded")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not records(fresh_client, "unrecorded", after):
        time.sleep(0.05)
    assert records(fresh_client, "unrecorded", after)[0]["request_id"] == after
    assert records(fresh_client, "unrecorded", before) == []  # accepted while persistence was off
    assert fresh_client.emu.request_count("update_async_config") == 1


def test_turning_persistence_off_keeps_the_records_already_made(fresh_client: Client) -> None:
    request_id = start(fresh_client, "noop")
    assert put(fresh_client, "noop", {"enable_async_status_log": False}).status_code == 200
    assert [r["request_id"] for r in records(fresh_client, "noop", request_id)] == [request_id]
    later = start(fresh_client, "noop")
    assert records(fresh_client, "noop", later) == []


def test_destinations_are_stored_and_answered(fresh_client: Client) -> None:
    destination = {"on_failure": {"destination": "SMN", "param": '{"topic_urn": "urn:smn:t"}'}}
    response = put(fresh_client, "sleep", {"destination_config": destination, "log_group_id": "ignored"})
    assert response.status_code == 200, response.text
    assert show(fresh_client, "sleep").json()["destination_config"] == destination


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"enable_async_status_log": "yes"}, "enable_async_status_log"),
        ({"max_async_event_age_in_seconds": 0}, "max_async_event_age_in_seconds"),
        ({"max_async_retry_attempts": 9}, "max_async_retry_attempts"),
        ({"destination_config": {"on_success": {"destination": "MAIL", "param": "{}"}}}, "on_success"),
        ([], "JSON object"),
    ],
)
def test_invalid_updates_are_400_and_change_nothing(fresh_client: Client, body: Any, detail: str) -> None:
    before = show(fresh_client, "sleep").json()
    response = put(fresh_client, "sleep", body)
    assert (response.status_code, response.json()["error_code"]) == (400, "FSS.0400")
    assert detail in response.json()["error_msg"]
    assert show(fresh_client, "sleep").json() == before


def test_an_update_of_an_unknown_function_is_404(fresh_client: Client) -> None:
    response = put(fresh_client, "nope", {"enable_async_status_log": True})
    assert (response.status_code, response.json()["error_code"]) == (404, "FSS.1051")
