"""Reading a function's async settings (ShowFunctionAsyncInvokeConfig); the error of an endless wait."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_fgs.compat import AirflowFailException
from airflow_provider_fgs.protocol.async_invoke_config import (
    AsyncInvokeConfig,
    build_async_invoke_config_request,
    parse_async_invoke_config,
)
from airflow_provider_fgs.protocol.errors import (
    AsyncStatusPersistenceDisabledError,
    FunctionGraphApiError,
    NotFoundError,
    PermanentError,
    error_from_event,
    error_to_event,
)
from airflow_provider_fgs.protocol.urn import FunctionUrn

URN = FunctionUrn.parse("urn:fss:ap-southeast-1:proj123:function:default:job:1")
ANSWER = {
    "func_urn": str(URN),
    "max_async_event_age_in_seconds": 3600,
    "max_async_retry_attempts": 1,
    "destination_config": {},
    "created_time": "2024-01-01T00:00:00Z",
    "last_modified": "2024-01-02T00:00:00Z",
    "enable_async_status_log": True,
}


def parse(body: Any, status: int = 200) -> AsyncInvokeConfig:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_async_invoke_config(status, {}, raw, function=str(URN))


def test_request_is_a_get_of_the_urn_as_one_segment() -> None:
    request = build_async_invoke_config_request("https://fgs.example/", URN)
    assert request.method == "GET"
    assert request.url == (
        "https://fgs.example/v2/proj123/fgs/functions/"
        "urn%3Afss%3Aap-southeast-1%3Aproj123%3Afunction%3Adefault%3Ajob%3A1/async-invoke-config"
    )
    assert request.headers["X-Project-Id"] == "proj123"
    assert request.body == b""


def test_answer_is_read_field_by_field() -> None:
    assert parse(ANSWER) == AsyncInvokeConfig(
        func_urn=str(URN),
        enable_async_status_log=True,
        max_async_event_age_in_seconds=3600,
        max_async_retry_attempts=1,
        last_modified="2024-01-02T00:00:00Z",
    )


@pytest.mark.parametrize(
    ("flag", "expected"),
    [(False, False), ("true", True), (" FALSE ", False), (None, None)],
)
def test_the_flag_is_read_tolerantly(flag: Any, expected: bool | None) -> None:
    assert parse({**ANSWER, "enable_async_status_log": flag}).enable_async_status_log is expected


def test_an_answer_that_does_not_state_the_flag_is_none_not_false() -> None:
    body = {key: value for key, value in ANSWER.items() if key != "enable_async_status_log"}
    config = parse({**body, "max_async_retry_attempts": "2", "max_async_event_age_in_seconds": True})
    assert config.enable_async_status_log is None
    assert (config.max_async_retry_attempts, config.max_async_event_age_in_seconds) == (2, None)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({**ANSWER, "enable_async_status_log": 1}, "enable_async_status_log=1"),
        ({**ANSWER, "enable_async_status_log": "yes"}, "enable_async_status_log='yes'"),
        ([ANSWER], "not a JSON object"),
        (b"<html>gateway</html>", "not a JSON object"),
    ],
)
def test_a_misleading_answer_is_refused(body: Any, detail: str) -> None:
    with pytest.raises(FunctionGraphApiError, match="async settings query") as caught:
        parse(body)
    assert detail in str(caught.value)


def test_a_refusal_is_the_platforms_typed_error() -> None:
    body = {"error_code": "FSS.1051", "error_msg": "Not found the function"}
    with pytest.raises(NotFoundError, match=r"FSS\.1051"):
        parse(body, status=404)


def test_persistence_error_names_the_function_the_setting_and_the_fix() -> None:
    error = AsyncStatusPersistenceDisabledError(function_urn=str(URN))
    message = str(error)
    assert isinstance(error, PermanentError)
    assert isinstance(error, AirflowFailException)  # no Airflow retries: they would fail the same way
    for part in (
        str(URN),
        "Async status persistence is off",
        "enable_async_status_log=false",
        "The invocation was not started",
        "Configuration > Asynchronous Notification",
        '"Async status persistence"',
        "PUT /v2/{project_id}/fgs/functions/{function_urn}/async-invoke-config",
        '{"enable_async_status_log": true}',
    ):
        assert part in message


def test_persistence_error_of_a_sensor_names_the_invocation_and_survives_a_trigger_event() -> None:
    error = AsyncStatusPersistenceDisabledError(function_urn=str(URN), request_id="rid-1")
    assert "Async invocation rid-1 may still run" in str(error)
    assert "not started" not in str(error)
    rebuilt = error_from_event(json.loads(json.dumps(error_to_event(error))))
    assert isinstance(rebuilt, AsyncStatusPersistenceDisabledError)
    assert (str(rebuilt), rebuilt.function_urn, rebuilt.request_id) == (str(error), str(URN), "rid-1")
