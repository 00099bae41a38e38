"""IAM token service and token authentication of FunctionGraph routes."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from tests.emulator.conftest import Client, function_url, get_token, token_body


def _expires(body: dict) -> datetime:  # type: ignore[type-arg]
    return datetime.strptime(body["token"]["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@pytest.mark.parametrize("scope", ["id", "name"])
def test_password_token_scoped_by_project_id_or_name(emulator: FunctionGraphEmulator, scope: str) -> None:
    project = {"id": emulator.project_id} if scope == "id" else {"name": emulator.project_name}
    response = requests.post(f"{emulator.url}/v3/auth/tokens", json=token_body(project), timeout=10)
    assert response.status_code == 201
    token = response.headers["X-Subject-Token"]
    assert len(token) > 1000
    body = response.json()
    assert body["token"]["project"]["id"] == emulator.project_id
    assert body["token"]["methods"] == ["password"]
    remaining = (_expires(body) - datetime.now(UTC)).total_seconds()
    assert 86000 < remaining <= 86400
    invoke = requests.post(
        function_url(emulator, "hello"), json={}, headers={"X-Auth-Token": token}, timeout=10
    )
    assert invoke.status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (token_body({"id": "0a1b2c3d4e5f60718293a4b5c6d7e8f9"}, password="wrong"), 401),
        (token_body({"id": "another-project"}), 401),
        (token_body({"id": "x", "name": "y"}), 400),
        ({"auth": {"identity": {"methods": ["totp"]}}}, 400),
        ({"auth": "nope"}, 400),
        ([1, 2], 400),
    ],
    ids=["wrong-password", "other-project", "id-and-name", "unknown-method", "bad-auth", "not-object"],
)
def test_refused_token_requests_have_keystone_bodies(
    emulator: FunctionGraphEmulator, body: object, status: int
) -> None:
    response = requests.post(f"{emulator.url}/v3/auth/tokens", json=body, timeout=10)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == status
    assert error["message"]
    assert error["title"]
    assert "X-Subject-Token" not in response.headers
    assert "demo-password" not in response.text


def test_non_json_token_request_is_400(emulator: FunctionGraphEmulator) -> None:
    response = requests.post(f"{emulator.url}/v3/auth/tokens", data=b"\xff{", timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


def test_revoked_token_is_refused(fresh_emulator: FunctionGraphEmulator) -> None:
    client = Client(fresh_emulator)
    assert client.invoke("hello", {}).status_code == 200
    fresh_emulator.revoke_tokens()
    response = client.invoke("hello", {})
    assert response.status_code == 401
    assert response.json()["error_code"] == "APIG.0301"
    assert fresh_emulator.invocation_count() == 1


def test_token_expires_after_its_ttl(fresh_emulator: FunctionGraphEmulator) -> None:
    fresh_emulator.set_token_ttl(0.3)
    client = Client(fresh_emulator)
    assert client.invoke("hello", {}).status_code == 200
    time.sleep(0.4)
    assert client.invoke("hello", {}).status_code == 401
    client.token = get_token(fresh_emulator)
    assert client.invoke("hello", {}).status_code == 200


def test_delete_revokes_one_token(emulator: FunctionGraphEmulator) -> None:
    keep, drop = get_token(emulator), get_token(emulator)
    response = requests.delete(
        f"{emulator.url}/v3/auth/tokens", headers={"X-Auth-Token": keep, "X-Subject-Token": drop}, timeout=10
    )
    assert response.status_code == 204
    call = {"json": {}, "timeout": 10}
    assert (
        requests.post(function_url(emulator, "hello"), headers={"X-Auth-Token": drop}, **call).status_code
        == 401
    )
    assert (
        requests.post(function_url(emulator, "hello"), headers={"X-Auth-Token": keep}, **call).status_code
        == 200
    )


def test_assume_role_needs_a_valid_token(emulator: FunctionGraphEmulator) -> None:
    body = {
        "auth": {
            "identity": {
                "methods": ["assume_role"],
                "assume_role": {"domain_name": "demo-domain", "agency_name": "fgs-agency"},
            },
            "scope": {"project": {"id": emulator.project_id}},
        }
    }
    url = f"{emulator.url}/v3/auth/tokens"
    refused = requests.post(url, json=body, headers={"X-Auth-Token": "bogus"}, timeout=10)
    assert refused.status_code == 401
    granted = requests.post(url, json=body, headers={"X-Auth-Token": get_token(emulator)}, timeout=10)
    assert granted.status_code == 201
    assert granted.json()["token"]["methods"] == ["assume_role"]
    agency_token = granted.headers["X-Subject-Token"]
    invoke = requests.post(
        function_url(emulator, "hello"), json={}, headers={"X-Auth-Token": agency_token}, timeout=10
    )
    assert invoke.status_code == 200


def test_token_requests_are_counted(fresh_emulator: FunctionGraphEmulator) -> None:
    get_token(fresh_emulator)
    assert fresh_emulator.request_count("token") == 1
    assert fresh_emulator.request_count("invoke") == 0
