from __future__ import annotations

import base64
import json

import pytest

from airflow_provider_fgs.protocol.errors import FunctionError, InvalidRequestError, ThrottledError
from airflow_provider_fgs.protocol.invoke import (
    InvocationResult,
    build_invoke_request,
    decode_log,
    encode_payload,
    parse_invoke_response,
    parse_summary,
)
from airflow_provider_fgs.protocol.urn import FunctionUrn

URN = FunctionUrn.from_parts(region="ap-southeast-1", project_id="p1", name="hello")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_build_invoke_request_headers_and_body() -> None:
    request = build_invoke_request("https://fg.example", URN, {"a": 1}, instance_memory=256)
    assert request.method == "POST"
    assert request.url.endswith(
        "/v2/p1/fgs/functions/urn%3Afss%3Aap-southeast-1%3Ap1%3Afunction%3Adefault%3Ahello%3Alatest/invocations"
    )
    assert request.headers["X-Cff-Log-Type"] == "tail"
    assert request.headers["X-CFF-Request-Version"] == "v1"
    assert request.headers["X-Cff-Instance-Memory"] == "256"
    assert request.headers["X-Project-Id"] == "p1"
    assert json.loads(request.body) == {"a": 1}
    assert (
        build_invoke_request("https://fg.example", URN, None, log_type=None).headers["X-Cff-Log-Type"] == ""
    )


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"log_type": "head"}, "log_type"),
        ({"request_version": "v2"}, "request_version"),
        ({"instance_memory": 100}, "instance_memory"),
        ({"instance_memory": "lots"}, "instance_memory"),
    ],
)
def test_bad_options_are_named(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidRequestError, match=named):
        build_invoke_request("https://fg.example", URN, {}, **kwargs)  # type: ignore[arg-type]


def test_encode_payload() -> None:
    assert encode_payload(None) == b"{}"
    assert encode_payload('{"x": 1}') == b'{"x": 1}'
    assert encode_payload({"é": 1}) == '{"é": 1}'.encode()
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        encode_payload("not json")
    with pytest.raises(InvalidRequestError, match="cannot be encoded"):
        encode_payload({"x": object()})
    with pytest.raises(InvalidRequestError, match="at most 10 bytes"):
        encode_payload({"x": "0123456789"}, limit=10)


def test_parse_v1_envelope_with_log_and_summary() -> None:
    body = json.dumps({"request_id": "r" * 36, "result": '{"answer": 42}', "log": "env log", "status": 200})
    headers = {
        "X-Cff-Request-Id": "rid-1",
        "X-Cff-Function-Log": _b64("line 1\nline 2"),
        "X-Cff-Invoke-Summary": json.dumps({"duration": 1.5, "billingDuration": 100}),
        "X-Func-Err-Code": "0",
        "X-Cff-Response-Version": "v1",
    }
    result = parse_invoke_response(200, headers, body.encode())
    assert result.result == {"answer": 42}
    assert result.raw_result == '{"answer": 42}'
    assert result.request_id == "rid-1"
    assert result.log == "line 1\nline 2"
    assert result.billing_duration_ms == 100
    assert result.duration_ms == 1.5
    assert not result.is_function_error


def test_parse_v1_uses_envelope_log_and_request_id_when_headers_are_absent() -> None:
    body = json.dumps({"request_id": "rid-env", "result": "plain text", "log": "env log", "status": 200})
    result = parse_invoke_response(200, {}, body.encode())
    assert (result.result, result.log, result.request_id) == ("plain text", "env log", "rid-env")


def test_parse_v0_raw_body_and_no_deserialize() -> None:
    result = parse_invoke_response(200, {}, b'{"k": [1, 2]}', request_version="v0")
    assert result.result == {"k": [1, 2]}
    raw = parse_invoke_response(200, {}, b'{"k": [1, 2]}', request_version="v0", deserialize=False)
    assert raw.result == '{"k": [1, 2]}'
    empty = parse_invoke_response(200, {}, b"", request_version="v0")
    assert empty.result is None


def test_function_error_payload_is_reported_not_raised() -> None:
    payload = {"errorMessage": "division by zero", "errorType": "ZeroDivisionError", "stackTrace": []}
    body = json.dumps({"request_id": "rid", "result": json.dumps(payload), "log": ""})  # no status
    result = parse_invoke_response(200, {"X-Cff-Request-Id": "rid"}, body.encode())
    assert result.is_function_error
    assert (result.error_type, result.error_message) == ("ZeroDivisionError", "division by zero")
    error = result.to_function_error("urn:x")
    assert isinstance(error, FunctionError)
    assert "ZeroDivisionError: division by zero" in str(error)
    assert error.request_id == "rid"


@pytest.mark.parametrize(
    ("status", "headers", "envelope_status"),
    [
        (500, {"X-Is-Func-Err": "true"}, 200),
        (200, {"X-Func-Err-Code": "FSS.1000"}, 200),
        (200, {}, 500),
    ],
)
def test_function_failure_signals(status: int, headers: dict[str, str], envelope_status: int) -> None:
    body = json.dumps({"request_id": "rid", "result": "boom", "log": "", "status": envelope_status})
    result = parse_invoke_response(status, headers, body.encode())
    assert result.is_function_error
    assert result.status_code == status


def test_platform_refusal_raises_typed_error() -> None:
    with pytest.raises(ThrottledError) as info:
        parse_invoke_response(
            429, {"X-Request-Id": "rid-9"}, b'{"error_code":"FSS.0429","error_msg":"slow down"}'
        )
    assert info.value.request_id == "rid-9"


def test_decode_log_handles_bad_padding_cut_characters_and_garbage() -> None:
    text, bad = decode_log(_b64("héllo").rstrip("="))
    assert (text, bad) == ("héllo", False)
    cut = base64.b64encode("é".encode()[1:] + b"ok").decode()
    assert decode_log(cut) == ("ok", False)  # the partial leading character is dropped
    assert decode_log("!!!not base64!!!") == (None, True)
    assert decode_log(None) == (None, False)


def test_parse_summary_is_lenient() -> None:
    assert parse_summary('{"duration": 1}') == {"duration": 1}
    assert parse_summary(json.dumps('{"duration": 1}')) == {"duration": 1}
    assert parse_summary("nope") == {}
    assert parse_summary("[1]") == {}


def test_invocation_result_round_trips_through_airflow_serialization() -> None:
    from airflow_provider_fgs.compat import AIRFLOW_VERSION

    if AIRFLOW_VERSION >= (3, 2):
        from airflow.sdk.serde import deserialize, serialize
    else:
        from airflow.serialization.serde import deserialize, serialize  # type: ignore[no-redef]

    result = parse_invoke_response(
        200,
        {"X-Cff-Request-Id": "r-1", "X-Cff-Invoke-Summary": '{"duration": 1.5}'},
        b'{"result": "{\\"a\\": [1, null]}", "log": "a line", "status": 200}',
        function="urn:fss:r:p:function:default:f:latest",
    )
    stored = serialize(result)
    assert stored["__version__"] == InvocationResult.__version__
    assert deserialize(stored) == result
    newer = {**stored, "__version__": InvocationResult.__version__ + 1}
    with pytest.raises(TypeError, match="newer provider"):
        deserialize(newer)


@pytest.mark.parametrize(
    ("raw", "text", "truncated"),
    [
        ("€".encode()[1:] + "é ok".encode(), "é ok", True),  # starts mid-character
        ("ok €".encode()[:-1], "ok ", False),  # ends mid-character: nothing replaced
        (b"x" * 2000, "x" * 2000, True),  # at the platform's limit
        (b"x" * 1999, "x" * 1999, False),
    ],
)
def test_log_tail_is_cut_at_a_character_and_says_when_truncated(
    raw: bytes, text: str, truncated: bool
) -> None:
    headers = {"X-Cff-Function-Log": base64.b64encode(raw).decode()}
    result = parse_invoke_response(200, headers, b'{"result": "1", "status": 200}')
    assert result.log == text
    assert "\ufffd" not in (result.log or "")
    assert result.log_bytes == len(raw)
    assert result.log_truncated is truncated


ERROR_SHAPED = {"errorMessage": "not an error: a field of the result", "errorType": "Note"}


@pytest.mark.parametrize(
    ("headers", "envelope_status", "version"),
    [
        ({"X-Is-Func-Err": "false", "X-Func-Err-Code": "0"}, 200, "v1"),
        ({"X-Is-Func-Err": "false"}, None, "v1"),
        ({"X-Func-Err-Code": "0"}, None, "v0"),
        ({}, 200, "v1"),
    ],
)
def test_success_headers_win_over_an_error_shaped_result(
    headers: dict[str, str], envelope_status: int | None, version: str
) -> None:
    if version == "v1":
        envelope: dict[str, object] = {"request_id": "rid", "result": json.dumps(ERROR_SHAPED), "log": ""}
        if envelope_status is not None:
            envelope["status"] = envelope_status
        body = json.dumps(envelope).encode()
    else:
        body = json.dumps(ERROR_SHAPED).encode()
    result = parse_invoke_response(200, headers, body, request_version=version)
    assert not result.is_function_error
    assert result.result == ERROR_SHAPED
    assert result.error_message is None


def test_error_shaped_result_fails_only_when_nothing_else_says() -> None:
    result = parse_invoke_response(200, {}, json.dumps(ERROR_SHAPED).encode(), request_version="v0")
    assert result.is_function_error
    assert result.error_message == ERROR_SHAPED["errorMessage"]
