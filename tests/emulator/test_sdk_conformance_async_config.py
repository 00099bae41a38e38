"""
The emulator's ``async-invoke-config`` answers read through the official SDK
(``ShowFunctionAsyncInvokeConfig``, ``UpdateFunctionAsyncInvokeConfig``), with the checks of
``test_sdk_conformance.py``: each JSON key must be one the SDK's response model knows, of the model's
type. The provider's own parser reads the same answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.protocol.async_invoke_config import parse_async_invoke_config
from tests.conftest import FUNCTION_DIRS
from tests.emulator.conftest import function_url, get_token, official_sdk_client

pytest.importorskip("huaweicloudsdkfunctiongraph")
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkfunctiongraph.v2 import (
    FuncAsyncDestinationConfig,
    FuncDestinationConfig,
    ShowFunctionAsyncInvokeConfigRequest,
    UpdateFunctionAsyncInvokeConfigRequest,
    UpdateFunctionAsyncInvokeConfigRequestBody,
)

from tests.emulator.test_sdk_conformance import conforms


@pytest.fixture(scope="module")
def sdk_emulator() -> Iterator[FunctionGraphEmulator]:
    """A private emulator: the updates below change its functions' settings."""
    with FunctionGraphEmulator(FUNCTION_DIRS, prestart_workers=1) as emu:
        yield emu


@pytest.fixture(scope="module")
def sdk(sdk_emulator: FunctionGraphEmulator) -> Any:
    return official_sdk_client(sdk_emulator)


def _show(sdk: Any, urn: str) -> Any:
    return conforms(
        sdk.show_function_async_invoke_config(ShowFunctionAsyncInvokeConfigRequest(function_urn=urn))
    )


def test_show_conforms_and_carries_the_persistence_flag(
    sdk: Any, sdk_emulator: FunctionGraphEmulator
) -> None:
    on = _show(sdk, sdk_emulator.urn("sleep"))
    off = _show(sdk, sdk_emulator.urn("unrecorded"))
    assert (on.enable_async_status_log, off.enable_async_status_log) == (True, False)
    assert on.func_urn == sdk_emulator.urn("sleep")
    assert isinstance(on.max_async_event_age_in_seconds, int)
    assert isinstance(on.max_async_retry_attempts, int)


def test_update_conforms_and_the_next_show_reflects_it(sdk: Any, sdk_emulator: FunctionGraphEmulator) -> None:
    body = UpdateFunctionAsyncInvokeConfigRequestBody(
        max_async_event_age_in_seconds=600,
        max_async_retry_attempts=2,
        enable_async_status_log=True,
        destination_config=FuncAsyncDestinationConfig(
            on_success=FuncDestinationConfig(destination="OBS", param='{"bucket": "b", "prefix": "ok"}')
        ),
    )
    urn = sdk_emulator.urn("unrecorded")
    updated = conforms(
        sdk.update_function_async_invoke_config(
            UpdateFunctionAsyncInvokeConfigRequest(function_urn=urn, body=body)
        )
    )
    assert (updated.enable_async_status_log, updated.max_async_event_age_in_seconds) == (True, 600)
    assert updated.destination_config.on_success.destination == "OBS"
    shown = _show(sdk, urn)
    assert shown.to_json_object() == updated.to_json_object()
    assert sdk_emulator.request_count("update_async_config") == 1


def test_an_unknown_function_reaches_the_sdk_as_fss_1051(
    sdk: Any, sdk_emulator: FunctionGraphEmulator
) -> None:
    with pytest.raises(ClientRequestException) as caught:
        sdk.show_function_async_invoke_config(
            ShowFunctionAsyncInvokeConfigRequest(function_urn=sdk_emulator.urn("nope"))
        )
    assert (caught.value.status_code, caught.value.error_code) == (404, "FSS.1051")


def test_the_providers_parser_reads_the_same_answer(sdk_emulator: FunctionGraphEmulator) -> None:
    response = requests.get(
        function_url(sdk_emulator, "sleep", "async-invoke-config"),
        headers={"X-Auth-Token": get_token(sdk_emulator)},
        timeout=30,
    )
    config = parse_async_invoke_config(
        response.status_code, response.headers, response.content, function=sdk_emulator.urn("sleep")
    )
    raw = json.loads(response.content)
    assert config.enable_async_status_log is raw["enable_async_status_log"] is True
    assert config.max_async_retry_attempts == raw["max_async_retry_attempts"]
