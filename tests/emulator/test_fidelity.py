"""Where the emulator follows the real FunctionGraph rather than being kinder (issue 11).

Async status windows and persistence, paging, the gateway's 90 s cut, the 3 s default timeout,
cancel's answer and types, and the shapes of a function failure the docs leave open.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.emulator.cli import build_parser
from airflow_provider_fgs.emulator.faults import parse_fault_spec
from airflow_provider_fgs.emulator.registry import FunctionConfigError, load_spec
from airflow_provider_fgs.protocol.async_invoke import (
    parse_async_status_page,
    query_begin_time_for,
)
from airflow_provider_fgs.protocol.invoke import parse_invoke_response
from tests.conftest import FUNCTION_DIRS
from tests.emulator.conftest import Client, function_url
from tests.emulator.test_async import start, wait_for


@pytest.fixture
def short_emulator() -> Iterator[FunctionGraphEmulator]:
    """A private emulator whose gateway cuts synchronous answers after 1 s."""
    with FunctionGraphEmulator(FUNCTION_DIRS, prestart_workers=1, gateway_timeout=1.0) as emu:
        yield emu


def _records(client: Client, name: str, **params: str) -> dict[str, object]:
    response = client.get(function_url(client.emu, name, "async-invocations"), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_status_query_looks_back_one_hour_unless_told_otherwise(fresh_client: Client) -> None:
    started = datetime.now(UTC)
    request_id = start(fresh_client, "hello", {"name": "old"})
    wait_for(fresh_client, "hello", request_id, {"SUCCESS"})
    fresh_client.emu.advance_clock(2 * 3600)

    assert _records(fresh_client, "hello", request_id=request_id)["invocations"] == []
    since = query_begin_time_for(started)
    assert since is not None
    found = _records(fresh_client, "hello", request_id=request_id, query_begin_time=since)
    assert [r["status"] for r in found["invocations"]] == ["SUCCESS"]  # type: ignore[index]


def test_query_end_time_bounds_the_window(fresh_client: Client) -> None:
    request_id = start(fresh_client, "hello", {})
    assert _records(fresh_client, "hello", request_id=request_id, query_end_time="2001-01-01T00:00:00") == {
        "invocations": [],
        "count": 0,
        "next_marker": 0,
    }


def test_bad_query_time_is_400(client: Client) -> None:
    response = client.get(
        function_url(client.emu, "hello", "async-invocations"), params={"query_begin_time": "yesterday"}
    )
    assert response.status_code == 400
    assert "query_begin_time" in response.json()["error_msg"]


def test_no_records_without_async_status_persistence(client: Client) -> None:
    request_id = start(client, "unrecorded", {})  # no unrecorded.json: persistence off, the default
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and client.emu.invocation_count("unrecorded") == 0:
        time.sleep(0.05)
    time.sleep(0.3)
    body = _records(client, "unrecorded", request_id=request_id)
    assert body["invocations"] == []
    assert body["count"] == 0


def test_paging_with_marker_and_limit(fresh_client: Client) -> None:
    ids = [start(fresh_client, "noop", {}) for _ in range(3)]
    first = _records(fresh_client, "noop", limit="2")
    assert [r["request_id"] for r in first["invocations"]] == ids[:2]  # type: ignore[index]
    assert (first["count"], first["next_marker"]) == (3, 2)
    second = _records(fresh_client, "noop", limit="2", marker="2")
    assert [r["request_id"] for r in second["invocations"]] == ids[2:]  # type: ignore[index]
    page = parse_async_status_page(
        200, {}, json.dumps(first).encode(), request_id=ids[2], function="noop", marker=0
    )
    assert page.status is None
    assert page.next_marker == 2
    last = parse_async_status_page(
        200, {}, json.dumps(second).encode(), request_id="other", function="noop", marker=2
    )
    assert last.next_marker is None


def test_records_carry_sdk_types(client: Client) -> None:
    request_id = start(client, "fail", {"value": "typed"})
    wait_for(client, "fail", request_id, {"FAIL"})
    failed = _records(client, "fail", request_id=request_id)["invocations"][0]  # type: ignore[index]
    assert isinstance(failed["error_code"], int)
    assert failed["error_code"] != 0
    ok_id = start(client, "hello", {})
    wait_for(client, "hello", ok_id, {"SUCCESS"})
    ok = _records(client, "hello", request_id=ok_id)["invocations"][0]  # type: ignore[index]
    assert ok["error_code"] == 0
    assert ok["start_time"].endswith("Z")


def test_gateway_cuts_a_slow_sync_answer_and_the_function_runs_on(
    short_emulator: FunctionGraphEmulator, tmp_path: Path
) -> None:
    client = Client(short_emulator)
    mark = tmp_path / "finished.txt"
    response = client.invoke("finish_mark", {"seconds": 2.5, "path": str(mark)})
    assert response.status_code == 504
    assert response.json() == {"error_code": "APIG.0201", "error_msg": "Backend timeout."}
    assert not mark.exists()  # answered before the function finished
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not mark.exists():
        time.sleep(0.05)
    assert len(mark.read_text().splitlines()) == 1  # it finished, once


def test_sync_answer_within_the_gateway_limit(short_emulator: FunctionGraphEmulator, tmp_path: Path) -> None:
    response = Client(short_emulator).invoke("finish_mark", {"seconds": 0, "path": str(tmp_path / "m")})
    assert response.status_code == 200


def test_default_function_timeout_is_3_s(tmp_path: Path) -> None:
    (tmp_path / "lazy.py").write_text("import time\n\ndef handler(event, context):\n    time.sleep(3.5)\n")
    with FunctionGraphEmulator(tmp_path, prestart_workers=1) as emu:
        response = Client(emu).invoke("lazy", {})
    assert response.headers["X-Is-Func-Err"] == "true"
    assert json.loads(response.json()["result"])["errorType"] == "FunctionTimeoutError"
    assert "3 s" in json.loads(response.json()["result"])["errorMessage"]


def test_cancel_answers_null_and_checks_its_type(fresh_client: Client) -> None:
    request_id = start(fresh_client, "sleep", {"seconds": 10})
    url = function_url(fresh_client.emu, "sleep", "cancel")
    bad = fresh_client.post(url, {"request_id": request_id, "type": "gentle"})
    assert bad.status_code == 400
    assert "recursive" in bad.json()["error_msg"]
    response = fresh_client.post(url, {"request_id": request_id, "type": "recursive"})
    assert response.status_code == 200
    assert response.content == b"null"
    assert wait_for(fresh_client, "sleep", request_id, {"DISCARD"}).status == "DISCARD"


def force_cancel_the_first_of_two_running(
    client: Client, name: str, seconds: tuple[int, int]
) -> tuple[str, str]:
    """Start two async invocations of ``name``, wait until both run, force-cancel the first."""
    first, second = (start(client, name, {"seconds": s}) for s in seconds)
    for request_id in (first, second):
        wait_for(client, name, request_id, {"RUNNING"})
    url = function_url(client.emu, name, "cancel")
    assert client.post(url, {"request_id": first, "type": "force"}).status_code == 200
    return first, second


def test_force_cancel_stops_only_its_request_when_an_instance_serves_one_at_a_time(
    fresh_client: Client,
) -> None:
    first, second = force_cancel_the_first_of_two_running(fresh_client, "sleep", (10, 3))
    assert wait_for(fresh_client, "sleep", first, {"DISCARD"}).status == "DISCARD"
    assert wait_for(fresh_client, "sleep", second, {"SUCCESS", "DISCARD"}).status == "SUCCESS"


def test_force_cancel_stops_the_other_running_requests_of_a_multi_concurrency_function(
    fresh_client: Client,
) -> None:
    # CancelAsyncInvocation: with 1:N functions, the instance's other running requests stop too.
    _, second = force_cancel_the_first_of_two_running(fresh_client, "sleep_shared", (10, 10))
    assert wait_for(fresh_client, "sleep_shared", second, {"DISCARD"}).status == "DISCARD"


@pytest.mark.parametrize("value", [0, 1001, 2.5, True, "4"])
def test_max_requests_per_instance_must_be_an_integer_from_1_to_1000(tmp_path: Path, value: Any) -> None:
    handler = tmp_path / "f.py"
    handler.write_text("def handler(event, context):\n    return None\n")
    config = tmp_path / "f.json"
    config.write_text(json.dumps({"max_requests_per_instance": value}))
    with pytest.raises(FunctionConfigError, match=f"max_requests_per_instance .* got {value!r}"):
        load_spec("f", handler, config)


@pytest.mark.parametrize(
    ("kind", "http_status", "has_flag", "has_code"),
    [
        ("error_500", 500, True, True),
        ("error_code_only", 200, False, True),
        ("error_bare", 200, False, False),
    ],
)
def test_function_failure_shapes_are_all_read_as_failures(
    fresh_client: Client, kind: str, http_status: int, has_flag: bool, has_code: bool
) -> None:
    fresh_client.emu.inject_fault(kind, function="fail")  # type: ignore[arg-type]
    response = fresh_client.invoke("fail", {"value": "shape"})
    assert response.status_code == http_status
    assert ("X-Is-Func-Err" in response.headers) is has_flag
    assert ("X-Func-Err-Code" in response.headers) is has_code
    result = parse_invoke_response(response.status_code, response.headers, response.content, function="fail")
    assert result.is_function_error
    assert result.error_message == "bad input: 'shape'"


def test_failure_shape_faults_leave_a_success_alone(fresh_client: Client) -> None:
    fresh_client.emu.inject_fault("error_bare", function="hello")
    response = fresh_client.invoke("hello", {})
    assert response.headers["X-Is-Func-Err"] == "false"


def test_invalid_token_fault_is_403_fss_0403(fresh_client: Client) -> None:
    fresh_client.emu.inject_fault("invalid_token", route="invoke")
    response = fresh_client.invoke("hello", {})
    assert response.status_code == 403
    assert response.json() == {"error_code": "FSS.0403", "error_msg": "invalid token"}
    assert fresh_client.emu.invocation_count("hello") == 0


@pytest.mark.parametrize("kind", ["invalid_token", "error_500", "error_code_only", "error_bare"])
def test_new_fault_kinds_parse_from_the_command_line(kind: str) -> None:
    fault = parse_fault_spec(f"{kind},count=2,function=fail")
    assert (fault.kind, fault.remaining, fault.function) == (kind, 2, "fail")


def test_gateway_timeout_option() -> None:
    parser = build_parser()
    assert parser.parse_args(["-f", "fns", "--gateway-timeout", "5"]).gateway_timeout == 5.0
    assert parser.parse_args(["-f", "fns"]).gateway_timeout is None  # main() then uses 90 s
