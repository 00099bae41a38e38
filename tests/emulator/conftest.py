"""Helpers of the emulator tests: a token, URLs, signed requests, the official SDK's client."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import requests

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.protocol.signing import Signer

DEMO_USER = {"domain": {"name": "demo-domain"}, "name": "demo-user", "password": "demo-password"}
SIGNER = Signer("DEMOACCESSKEY", "demo-secret-key")


def official_sdk_client(emulator: FunctionGraphEmulator) -> Any:
    """Huawei's own FunctionGraph client, signing with the emulator's demo access key."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkfunctiongraph.v2 import FunctionGraphClient

    credentials = BasicCredentials("DEMOACCESSKEY", "demo-secret-key", emulator.project_id)
    return (
        FunctionGraphClient.new_builder().with_credentials(credentials).with_endpoints([emulator.url]).build()
    )


def token_body(project: dict[str, str] | None = None, password: str = "demo-password") -> dict[str, Any]:
    body: dict[str, Any] = {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": {**DEMO_USER, "password": password}}}
        }
    }
    if project is not None:
        body["auth"]["scope"] = {"project": project}
    return body


def get_token(emu: FunctionGraphEmulator) -> str:
    response = requests.post(
        f"{emu.url}/v3/auth/tokens?nocatalog=true", json=token_body({"id": emu.project_id}), timeout=10
    )
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def function_url(
    emu: FunctionGraphEmulator, name: str, action: str = "invocations", *, encode: bool = True
) -> str:
    urn = emu.urn(name) if ":" not in name else name
    segment = quote(urn, safe="") if encode else urn
    return f"{emu.url}/v2/{emu.project_id}/fgs/functions/{segment}/{action}"


class Client:
    """Token-authenticated calls to one emulator."""

    def __init__(self, emu: FunctionGraphEmulator) -> None:
        self.emu = emu
        self.token = get_token(emu)
        self.session = requests.Session()

    def post(
        self, url: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> requests.Response:
        all_headers = {"X-Auth-Token": self.token, "Content-Type": "application/json", **(headers or {})}
        data = body if isinstance(body, bytes | str) else requests.models.complexjson.dumps(body or {})
        return self.session.post(url, data=data, headers=all_headers, timeout=30, **kw)

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self.session.get(url, headers={"X-Auth-Token": self.token}, timeout=30, **kw)

    def invoke(self, name: str, body: Any = None, **headers: str) -> requests.Response:
        base = {"X-Cff-Log-Type": "tail", "X-CFF-Request-Version": "v1"}
        base.update({k.replace("_", "-"): v for k, v in headers.items()})
        return self.post(function_url(self.emu, name), body, base)


@pytest.fixture(scope="session")
def client(emulator: FunctionGraphEmulator) -> Client:
    return Client(emulator)


@pytest.fixture
def fresh_client(fresh_emulator: FunctionGraphEmulator) -> Client:
    return Client(fresh_emulator)
