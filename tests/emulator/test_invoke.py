"""Synchronous invoke over real sockets: headers, envelopes, logs, errors (PROTOCOL.md section 3)."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.protocol.invoke import parse_invoke_response
from tests.emulator.conftest import Client, function_url

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def parse(response, function: str = "f", version: str = "v1"):  # type: ignore[no-untyped-def]
    return parse_invoke_response(
        response.status_code, response.headers, response.content, function=function, request_version=version
    )


def test_v1_envelope_and_every_documented_header(client: Client) -> None:
    response = client.invoke("echo", {"k": [1, 2]})
    assert response.status_code == 200
    headers = response.headers
    request_id = headers["X-Cff-Request-Id"]
    assert len(request_id) == 36
    body = response.json()
    assert set(body) == {"request_id", "result", "log", "status"}
    assert body["request_id"] == request_id
    assert body["status"] == 200
    result = json.loads(body["result"])
    assert result["event"] == {"k": [1, 2]}
    assert result["request_id"] == request_id
    assert (result["function"], result["version"], result["package"]) == ("echo", "latest", "default")
    assert result["memory"] == 256  # from echo.json
    assert result["user_data"] == "hi"
    assert 0 < result["remaining_ms"] <= 5000
    summary = json.loads(headers["X-Cff-Invoke-Summary"])
    assert {"duration", "billingDuration", "memorySize", "memoryUsed"} <= set(summary)
    assert summary["memorySize"] == 256
    assert headers["X-CFF-Billing-Duration"] == str(summary["billingDuration"])
    assert headers["X-Cff-Response-Version"] == "v1"
    assert headers["X-Func-Err-Code"] == "0"
    assert headers["X-Is-Func-Err"] == "false"
    parsed = parse(response)
    assert not parsed.is_function_error
    assert parsed.billing_duration_ms == summary["billingDuration"]


def test_log_tail_has_platform_frame_logger_lines_and_prints(client: Client) -> None:
    response = client.invoke("echo", {})
    request_id = response.headers["X-Cff-Request-Id"]
    log = base64.b64decode(response.headers["X-Cff-Function-Log"]).decode()
    lines = log.splitlines()
    assert re.fullmatch(rf"{ISO} Start invoke request '{request_id}', version: latest", lines[0])
    assert re.fullmatch(rf"{ISO} {request_id} INFO echo called", lines[2])
    assert lines[1] == "printed line"
    assert re.fullmatch(
        rf"{ISO} Finish invoke request '{request_id}', duration: [\d.]+ms, billing duration: \d+ms, "
        r"memory used: [\d.]+MB, billing memory: 256MB",
        lines[-1],
    )
    assert response.json()["log"] == log


def test_log_tail_is_the_last_2000_bytes(client: Client) -> None:
    response = client.invoke("chatty", {"lines": 300})
    tail = base64.b64decode(response.headers["X-Cff-Function-Log"])
    assert len(tail) == 2000
    assert b"line 0299" in tail
    assert b"line 0000" not in tail
    assert "Finish invoke request" in tail.decode().rstrip().splitlines()[-1]


def test_no_log_unless_tail_requested(client: Client) -> None:
    response = client.post(function_url(client.emu, "hello"), {}, {"X-CFF-Request-Version": "v1"})
    assert response.status_code == 200
    assert "X-Cff-Function-Log" not in response.headers
    assert response.json()["log"] == ""


def test_v0_returns_the_raw_result(client: Client) -> None:
    response = client.invoke("hello", {"name": "v0"}, X_CFF_Request_Version="v0")
    assert response.status_code == 200
    assert response.headers["X-Cff-Response-Version"] == "v0"
    assert response.json()["message"] == "Hello, v0!"
    text = client.invoke("text", {}, X_CFF_Request_Version="v0")
    assert text.text == "plain text"


def test_string_result_passes_through_in_v1(client: Client) -> None:
    assert client.invoke("text", {}).json()["result"] == "plain text"


@pytest.mark.parametrize("encode", [True, False], ids=["percent-encoded", "raw"])
def test_urn_segment_encoded_or_raw(client: Client, encode: bool) -> None:
    url = function_url(client.emu, "hello", encode=encode)
    response = client.post(url, {"name": "urn"}, {"X-CFF-Request-Version": "v0"})
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Hello, urn!"


def test_handler_exception_gives_error_payload_and_headers(client: Client) -> None:
    response = client.invoke("fail", {"value": 7})
    assert response.status_code == 200
    assert response.headers["X-Is-Func-Err"] == "true"
    assert response.headers["X-Func-Err-Code"] != "0"
    payload = json.loads(response.json()["result"])
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "bad input: 7"
    assert any("fail.py" in line for line in payload["stackTrace"])
    # Only the function's own frames: none of the emulator's (worker.py, run_job).
    assert not any("worker.py" in line or "run_job" in line for line in payload["stackTrace"])
    assert "fail.py" in payload["stackTrace"][0]
    result = parse(response, "fail")
    assert result.is_function_error
    assert (result.error_type, result.error_message) == ("ValueError", "bad input: 7")
    assert result.log is not None
    assert "about to fail" in result.log
    v0 = client.invoke("fail", {"value": 1}, X_CFF_Request_Version="v0")
    assert v0.json()["errorType"] == "ValueError"


def test_timeout_is_enforced_and_the_worker_replaced(client: Client) -> None:
    response = client.invoke("slow", {"seconds": 30})
    assert response.headers["X-Is-Func-Err"] == "true"
    payload = json.loads(response.json()["result"])
    assert "timeout" in payload["errorMessage"]
    assert "Finish invoke request" in base64.b64decode(response.headers["X-Cff-Function-Log"]).decode()
    assert client.invoke("slow", {"seconds": 0}).json()["result"] == "finished"


@pytest.mark.parametrize("lines", [3, 200], ids=["short", "longer-than-the-tail"])
def test_timed_out_function_keeps_its_own_log(client: Client, lines: int) -> None:
    response = client.invoke("hang", {"lines": lines})
    assert response.headers["X-Is-Func-Err"] == "true"
    raw = base64.b64decode(response.headers["X-Cff-Function-Log"])
    log = raw.decode("utf-8", errors="replace")
    assert f"INFO working {lines - 1:04d} " + "é" * 10 in log
    assert log.index("INFO waiting for the database") < log.index("ERROR Invoke function timeout")
    assert "Finish invoke request" in log.splitlines()[-1]
    if lines == 3:
        assert "INFO working 0000" in log
        assert "Start invoke request" in log.splitlines()[0]
    else:
        assert len(raw) == 2000  # the same 2000-byte tail as for a success
        assert "INFO working 0000" not in log


def test_crashed_worker_is_a_function_error_and_replaced(client: Client) -> None:
    response = client.invoke("crash", {})
    assert response.status_code == 200
    assert response.headers["X-Is-Func-Err"] == "true"
    assert json.loads(response.json()["result"])["errorType"] == "RuntimeExitError"
    # The function's own lines stay, before the platform's line.
    log = base64.b64decode(response.headers["X-Cff-Function-Log"]).decode()
    assert (
        log.index("INFO about to crash")
        < log.index("printed before the crash")
        < log.index("ERROR The runtime")
    )
    assert client.invoke("hello", {}).status_code == 200


def test_versions_and_aliases_resolve(client: Client) -> None:
    emu = client.emu
    version = client.post(function_url(emu, emu.urn("echo", "2")), {}, {"X-CFF-Request-Version": "v0"})
    assert (version.json()["version"], version.json()["alias"]) == ("2", "")
    alias = client.post(function_url(emu, emu.urn("echo", "!prod")), {}, {"X-CFF-Request-Version": "v0"})
    assert (alias.json()["version"], alias.json()["alias"]) == ("1", "prod")
    unqualified = client.post(function_url(emu, emu.urn("echo").rsplit(":", 1)[0]), {}, {})
    assert unqualified.json()["version"] == "latest"


@pytest.mark.parametrize(
    ("name", "qualifier", "code"),
    [("nope", "latest", "FSS.1051"), ("echo", "9", "FSS.1052"), ("echo", "!missing", "FSS.1053")],
)
def test_unknown_function_version_alias(client: Client, name: str, qualifier: str, code: str) -> None:
    response = client.post(function_url(client.emu, client.emu.urn(name, qualifier)), {})
    assert response.status_code == 404
    assert response.json()["error_code"] == code
    assert response.json()["error_msg"]


def test_other_project_or_region_is_not_found(client: Client) -> None:
    emu = client.emu
    other = f"urn:fss:eu-west-101:{emu.project_id}:function:default:hello:latest"
    response = client.post(function_url(emu, other), {})
    assert (response.status_code, response.json()["error_code"]) == (404, "FSS.1051")


@pytest.mark.parametrize(
    "urn", ["not-a-urn", "urn:fss:x", "urn:fss:ap-southeast-1:p:function:default:bad name"]
)
def test_bad_urn_is_400_fss_1309(client: Client, urn: str) -> None:
    response = client.post(f"{client.emu.url}/v2/{client.emu.project_id}/fgs/functions/{urn}/invocations", {})
    assert response.status_code == 400
    assert response.json()["error_code"] == "FSS.1309"


def test_body_over_6_mb_is_413(client: Client) -> None:
    body = json.dumps({"blob": "x" * (6 * 1024 * 1024)})
    response = client.invoke("hello", body)
    assert response.status_code == 413
    assert response.json()["error_code"] == "FSS.0413"


def test_non_json_body_is_406(client: Client) -> None:
    response = client.invoke("hello", b"{not json")
    assert response.status_code == 406
    assert response.json()["error_code"] == "FSS.0406"
    assert "JSON" in response.json()["error_msg"]


def test_empty_body_is_an_empty_event(client: Client) -> None:
    assert client.invoke("echo", b"").status_code == 200


@pytest.mark.parametrize("name", ["hello", "memory"])
@pytest.mark.parametrize("memory", ["100", "abc", "999999"])
def test_bad_instance_memory_is_406(client: Client, memory: str, name: str) -> None:
    response = client.invoke(name, {}, X_Cff_Instance_Memory=memory)
    assert response.status_code == 406
    assert response.json()["error_code"] == "FSS.0406"
    assert "X-Cff-Instance-Memory" in response.json()["error_msg"]


def test_instance_memory_applies_with_dynamic_memory(client: Client) -> None:
    response = client.invoke("memory", {}, X_Cff_Instance_Memory="1024")  # memory.json: dynamic_memory
    assert json.loads(response.json()["result"])["memory"] == 1024
    assert json.loads(response.headers["X-Cff-Invoke-Summary"])["memorySize"] == 1024


def test_instance_memory_is_ignored_without_dynamic_memory(client: Client) -> None:
    response = client.invoke("echo", {}, X_Cff_Instance_Memory="1024")
    assert response.status_code == 200
    assert json.loads(response.json()["result"])["memory"] == 256  # echo.json's memory_size
    assert json.loads(response.headers["X-Cff-Invoke-Summary"])["memorySize"] == 256


def test_bad_request_version_is_400(client: Client) -> None:
    response = client.invoke("hello", {}, X_CFF_Request_Version="v9")
    assert response.status_code == 400


def test_environment_and_user_data_from_settings(client: Client) -> None:
    result = json.loads(client.invoke("environ", {}).json()["result"])
    assert result == {"MODE": "emulated", "greeting": "hey"}


def test_edited_handler_is_picked_up(tmp_path: Path) -> None:
    handler = tmp_path / "mutable.py"
    handler.write_text("def handler(event, context):\n    return 'one'\n")
    with FunctionGraphEmulator(tmp_path, prestart_workers=1) as emu:
        client = Client(emu)
        assert client.invoke("mutable", {}).json()["result"] == "one"
        handler.write_text("def handler(event, context):\n    return 'two!'\n")
        assert client.invoke("mutable", {}).json()["result"] == "two!"
        shutil.copy(handler, tmp_path / "added.py")
        assert client.invoke("added", {}).json()["result"] == "two!"


def test_invocations_run_concurrently_in_separate_processes(client: Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: client.invoke("stamp", {"seconds": 1.0}), range(10)))
    stamps = [json.loads(r.json()["result"]) for r in results]
    # Every invocation started before any of them ended: none waited for another.
    assert max(s["started"] for s in stamps) < min(s["ended"] for s in stamps)
    assert len({s["pid"] for s in stamps}) == 10


def test_invocation_count(fresh_client: Client) -> None:
    emu = fresh_client.emu
    fresh_client.invoke("hello", {})
    fresh_client.invoke("hello", {})
    fresh_client.invoke("fail", {})
    fresh_client.invoke("nope", {})
    assert emu.invocation_count("hello") == 2
    assert emu.invocation_count() == 3
    assert emu.request_count("invoke") == 4
    assert emu.request_count("token") == 1
    emu.reset_stats()
    assert emu.request_count() == 0
