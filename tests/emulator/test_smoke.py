"""End-to-end smoke test: a signed request runs a real handler."""

from __future__ import annotations

import json

import requests

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.protocol.invoke import build_invoke_request, parse_invoke_response
from airflow_provider_fgs.protocol.signing import Signer
from airflow_provider_fgs.protocol.urn import FunctionUrn

SIGNER = Signer("DEMOACCESSKEY", "demo-secret-key")


def test_signed_invoke_runs_the_handler(emulator: FunctionGraphEmulator) -> None:
    request = build_invoke_request(emulator.url, FunctionUrn.parse(emulator.urn("hello")), {"name": "Ada"})
    headers = SIGNER.sign(request.method, request.url, request.headers, request.body)
    response = requests.post(request.url, data=request.body, headers=headers, timeout=30)
    result = parse_invoke_response(
        response.status_code, response.headers, response.content, function="hello", request_version="v1"
    )
    assert not result.is_function_error
    assert result.result["message"] == "Hello, Ada!"
    assert result.result["request_id"] == result.request_id
    assert result.log is not None
    assert "greeting Ada" in result.log
    summary = json.loads(response.headers["X-Cff-Invoke-Summary"])
    assert set(summary) == {"duration", "billingDuration", "memorySize", "memoryUsed"}  # the documented keys
