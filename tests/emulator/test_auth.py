"""AK/SK signature checks, including the official Huawei SDK as the conformance bar."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.protocol.invoke import build_invoke_request
from airflow_provider_fgs.protocol.signing import Signer
from airflow_provider_fgs.protocol.urn import FunctionUrn
from tests.emulator.conftest import SIGNER, official_sdk_client


def _signed(emulator: FunctionGraphEmulator, signer: Signer = SIGNER, **sign_kw):  # type: ignore[no-untyped-def]
    request = build_invoke_request(emulator.url, FunctionUrn.parse(emulator.urn("hello")), {"name": "sig"})
    return request, signer.sign(request.method, request.url, request.headers, request.body, **sign_kw)


def _refused(response: requests.Response) -> None:
    assert response.status_code == 401
    assert response.json()["error_code"] == "APIG.0301"
    assert "demo-secret-key" not in response.text


def test_valid_signature_is_accepted(emulator: FunctionGraphEmulator) -> None:
    request, headers = _signed(emulator)
    response = requests.post(request.url, data=request.body, headers=headers, timeout=10)
    assert response.status_code == 200
    assert json.loads(response.json()["result"])["message"] == "Hello, sig!"


def test_signed_query_string_is_checked(emulator: FunctionGraphEmulator) -> None:
    url = f"{emulator.url}/v2/{emulator.project_id}/fgs/functions/{emulator.urn('hello')}/async-invocations"
    signed_url = f"{url}?request_id=abc&limit=5"
    headers = SIGNER.sign("GET", signed_url, {"X-Project-Id": emulator.project_id}, b"")
    assert requests.get(signed_url, headers=headers, timeout=10).status_code == 200
    _refused(requests.get(f"{url}?request_id=abd&limit=5", headers=headers, timeout=10))


def test_no_credentials(emulator: FunctionGraphEmulator) -> None:
    request, _ = _signed(emulator)
    _refused(requests.post(request.url, data=request.body, headers=request.headers, timeout=10))


def test_wrong_secret_key(emulator: FunctionGraphEmulator) -> None:
    request, headers = _signed(emulator, Signer("DEMOACCESSKEY", "not-the-secret"))
    _refused(requests.post(request.url, data=request.body, headers=headers, timeout=10))


def test_unknown_access_key(emulator: FunctionGraphEmulator) -> None:
    request, headers = _signed(emulator, Signer("OTHERKEY", "demo-secret-key"))
    _refused(requests.post(request.url, data=request.body, headers=headers, timeout=10))


def test_tampered_body(emulator: FunctionGraphEmulator) -> None:
    request, headers = _signed(emulator)
    _refused(requests.post(request.url, data=b'{"name": "evil"}', headers=headers, timeout=10))


def test_tampered_signed_header(emulator: FunctionGraphEmulator) -> None:
    request, headers = _signed(emulator)
    headers["X-CFF-Request-Version"] = "v0"
    _refused(requests.post(request.url, data=request.body, headers=headers, timeout=10))


@pytest.mark.parametrize("minutes", [-20, 20])
def test_date_more_than_15_minutes_off(emulator: FunctionGraphEmulator, minutes: int) -> None:
    request, headers = _signed(emulator, now=datetime.now(UTC) + timedelta(minutes=minutes))
    _refused(requests.post(request.url, data=request.body, headers=headers, timeout=10))


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic abc",
        "SDK-HMAC-SHA256 garbage",
        "SDK-HMAC-SHA256 Access=DEMOACCESSKEY, SignedHeaders=host;x-missing, Signature=00",
    ],
)
def test_malformed_authorization(emulator: FunctionGraphEmulator, authorization: str) -> None:
    request, headers = _signed(emulator)
    headers["Authorization"] = authorization
    _refused(requests.post(request.url, data=request.body, headers=headers, timeout=10))


def test_official_sdk_invokes_with_aksk(emulator: FunctionGraphEmulator) -> None:
    from huaweicloudsdkfunctiongraph.v2 import AsyncInvokeFunctionRequest, InvokeFunctionRequest

    client = official_sdk_client(emulator)
    response = client.invoke_function(
        InvokeFunctionRequest(
            function_urn=emulator.urn("hello"),
            x_cff_log_type="tail",
            x_cff_request_version="v1",
            body={"name": "SDK"},
        )
    )
    assert json.loads(response.result)["message"] == "Hello, SDK!"
    assert response.status == 200
    assert "greeting SDK" in response.log
    started = client.async_invoke_function(
        AsyncInvokeFunctionRequest(function_urn=emulator.urn("hello"), body={"name": "async"})
    )
    assert len(started.request_id) == 36
    deadline = time.monotonic() + 20
    url = f"{emulator.url}/v2/{emulator.project_id}/fgs/functions/{emulator.urn('hello')}/async-invocations"
    status = None
    while time.monotonic() < deadline and status != "SUCCESS":
        signed_url = f"{url}?request_id={started.request_id}"
        headers = SIGNER.sign("GET", signed_url, {}, b"")
        status = requests.get(signed_url, headers=headers, timeout=10).json()["invocations"][0]["status"]
        time.sleep(0.05)
    assert status == "SUCCESS"
