"""
Every answer of the emulator read through the official SDK (``huaweicloudsdkfunctiongraph``), over
AK/SK, field by field: each JSON key must be one the SDK's response model knows, and each value must
have the model's type (``int`` fields are integers, ``datetime`` fields parse). The SDK itself only
warns on an unparsable datetime and silently drops unknown keys, so both are checked here.

The IAM token answers are read through ``huaweicloudsdkiam`` in ``test_sdk_conformance_iam.py``, with
the same checks.
"""

from __future__ import annotations

import importlib
import time
import warnings
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from tests.conftest import FUNCTION_DIRS
from tests.emulator.conftest import official_sdk_client

sdk_core = pytest.importorskip("huaweicloudsdkcore")
from huaweicloudsdkcore.exceptions.exceptions import (  # noqa: E402
    ClientRequestException,
    ServerResponseException,
)
from huaweicloudsdkfunctiongraph.v2 import (  # noqa: E402
    AsyncInvokeFunctionRequest,
    CancelAsyncInvocationRequest,
    CancelAsyncInvocationRequestBody,
    InvokeFunctionRequest,
    ListAsyncInvocationsRequest,
    ListFunctionsRequest,
    ShowFunctionConfigRequest,
)
from huaweicloudsdkfunctiongraph.v2 import model as sdk_models  # noqa: E402

_PRIMITIVES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "bool": bool,
    "object": object,
}


def assert_conforms(raw: Any, model_type: str, where: str = "body", models: Any = sdk_models) -> None:
    """
    ``raw`` (decoded JSON) has only keys the SDK type ``model_type`` knows, each of its type.

    :param models: the SDK's model package that defines ``model_type`` and the types it refers to.
    """
    if raw is None:
        return
    if model_type.startswith("list["):
        assert isinstance(raw, list), f"{where}: expected a list, got {raw!r}"
        for index, item in enumerate(raw):
            assert_conforms(item, model_type[5:-1], f"{where}[{index}]", models)
        return
    if model_type.startswith("dict("):
        assert isinstance(raw, dict), f"{where}: expected an object, got {raw!r}"
        value_type = model_type[5:-1].split(",", 1)[1].strip()
        for key, value in raw.items():
            assert_conforms(value, value_type, f"{where}.{key}", models)
        return
    if model_type == "datetime":
        assert isinstance(raw, str), f"{where}: expected a date-time string, got {raw!r}"
        from dateutil.parser import parse  # what the SDK uses

        parse(raw if raw.endswith("Z") else raw + "Z")
        return
    if model_type in _PRIMITIVES:
        expected = _PRIMITIVES[model_type]
        if model_type == "int":
            assert not isinstance(raw, bool), f"{where}: expected int, got {raw!r}"
            assert isinstance(raw, int), f"{where}: expected int, got {raw!r}"
        else:
            assert isinstance(raw, expected), f"{where}: expected {model_type}, got {raw!r}"
        return
    model = getattr(models, model_type)
    assert isinstance(raw, dict), f"{where}: expected an object for {model_type}, got {raw!r}"
    by_json_key = {json_key: attr for attr, json_key in model.attribute_map.items()}
    unknown = sorted(set(raw) - set(by_json_key))
    assert not unknown, f"{where}: keys {unknown} are not in the SDK's {model_type}"
    for key, value in raw.items():
        assert_conforms(value, model.openapi_types[by_json_key[key]], f"{where}.{key}", models)


def conforms(response: Any) -> Any:
    """
    Check a deserialized SDK response against its raw JSON body; returns the response.

    The model's header fields (JSON names ``X-...``) are not body keys: each must have been sent.
    """
    response_type = type(response)
    raw = response.to_json_object()
    model_name = response_type.__name__
    models = importlib.import_module(response_type.__module__.rsplit(".", 1)[0])
    headers = [attr for attr, json_key in response_type.attribute_map.items() if json_key.startswith("X-")]
    for attr in headers:
        assert getattr(response, attr), f"{model_name}: header {response_type.attribute_map[attr]} missing"
    body_fields = {attr: t for attr, t in response_type.openapi_types.items() if attr not in headers}
    if not body_fields:  # a model with no fields: the body is JSON null
        assert raw is None, f"{model_name}: expected a null body, got {raw!r}"
        assert response.raw_content == b"null"
        return response
    assert isinstance(raw, dict), f"{model_name}: expected an object, got {raw!r}"
    by_json_key = {response_type.attribute_map[attr]: attr for attr in body_fields}
    unknown = sorted(set(raw) - set(by_json_key))
    assert not unknown, f"{model_name}: keys {unknown} are not in the SDK's model"
    for key, value in raw.items():
        assert_conforms(value, body_fields[by_json_key[key]], f"{model_name}.{key}", models)
    return response


@pytest.fixture(scope="module")
def sdk_emulator() -> Iterator[FunctionGraphEmulator]:
    """One worker, so a second async invocation waits (WAIT) while the first runs."""
    with FunctionGraphEmulator(FUNCTION_DIRS, max_workers=1, prestart_workers=1) as emu:
        yield emu


@pytest.fixture(scope="module")
def sdk(sdk_emulator: FunctionGraphEmulator) -> Any:
    return official_sdk_client(sdk_emulator)


@pytest.fixture(autouse=True)
def _warnings_are_errors() -> Iterator[None]:
    """The SDK only warns when a datetime does not parse: make that a failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=Warning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=ResourceWarning)
        yield


def _invoke(sdk: Any, emu: FunctionGraphEmulator, name: str, body: Any, version: str) -> Any:
    return sdk.invoke_function(
        InvokeFunctionRequest(
            function_urn=emu.urn(name), x_cff_log_type="tail", x_cff_request_version=version, body=body
        )
    )


def test_sync_v1_success(sdk: Any, sdk_emulator: FunctionGraphEmulator) -> None:
    response = conforms(_invoke(sdk, sdk_emulator, "hello", {"name": "SDK"}, "v1"))
    assert response.status == 200
    assert response.x_cff_request_id == response.request_id
    assert "Hello, SDK!" in response.result


def test_sync_v1_function_error(sdk: Any, sdk_emulator: FunctionGraphEmulator) -> None:
    response = conforms(_invoke(sdk, sdk_emulator, "fail", {"value": "sdk"}, "v1"))
    assert response.status == 500
    assert "bad input" in response.result


def test_sync_v0_is_the_raw_result(sdk: Any, sdk_emulator: FunctionGraphEmulator) -> None:
    response = _invoke(sdk, sdk_emulator, "hello", {"name": "v0"}, "v0")
    assert response.to_json_object()["message"] == "Hello, v0!"  # no envelope: the SDK's fields stay empty
    assert response.x_cff_request_id


@pytest.mark.parametrize(
    ("name", "headers", "status", "code"),
    [
        ("nope", {}, 404, "FSS.1051"),
        ("hello", {"x_cff_instance_memory": "100"}, 406, "FSS.0406"),
    ],
)
def test_platform_errors_reach_the_sdk_with_their_codes(
    sdk: Any, sdk_emulator: FunctionGraphEmulator, name: str, headers: dict[str, str], status: int, code: str
) -> None:
    with pytest.raises(ClientRequestException) as caught:
        sdk.invoke_function(InvokeFunctionRequest(function_urn=sdk_emulator.urn(name), body={}, **headers))
    assert (caught.value.status_code, caught.value.error_code) == (status, code)
    assert caught.value.error_msg


def test_gateway_cut_reaches_the_sdk_as_apig_0201(sdk: Any, sdk_emulator: FunctionGraphEmulator) -> None:
    sdk_emulator.set_gateway_timeout(0.3)
    try:
        with pytest.raises(ServerResponseException) as caught:
            _invoke(sdk, sdk_emulator, "sleep", {"seconds": 1}, "v1")
    finally:
        sdk_emulator.set_gateway_timeout(90)
    assert (caught.value.status_code, caught.value.error_code) == (504, "APIG.0201")
    time.sleep(1.2)  # the cut function runs on in the only worker: let it finish


def _start(sdk: Any, emu: FunctionGraphEmulator, name: str, body: Any) -> str:
    response = conforms(
        sdk.async_invoke_function(AsyncInvokeFunctionRequest(function_urn=emu.urn(name), body=body))
    )
    assert response.status_code == 202
    request_id: str = response.request_id
    return request_id


def _record(sdk: Any, emu: FunctionGraphEmulator, name: str, request_id: str) -> Any:
    response = conforms(
        sdk.list_async_invocations(
            ListAsyncInvocationsRequest(function_urn=emu.urn(name), request_id=request_id)
        )
    )
    assert isinstance(response.count, int)
    assert isinstance(response.next_marker, int)
    return response.invocations[0] if response.invocations else None


def _wait(sdk: Any, emu: FunctionGraphEmulator, name: str, request_id: str, status: str) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = _record(sdk, emu, name, request_id)
        if record is not None and record.status == status:
            return record
        time.sleep(0.05)
    raise AssertionError(f"{request_id} never reached {status}")


def test_async_records_in_every_state(sdk: Any, sdk_emulator: FunctionGraphEmulator) -> None:
    running_id = _start(sdk, sdk_emulator, "sleep", {"seconds": 1.5})
    waiting_id = _start(sdk, sdk_emulator, "hello", {"name": "queued"})  # the only worker is busy
    running = _wait(sdk, sdk_emulator, "sleep", running_id, "RUNNING")
    waiting = _record(sdk, sdk_emulator, "hello", waiting_id)
    assert waiting.status == "WAIT"
    assert isinstance(waiting.start_time, datetime)
    assert isinstance(running.start_time, datetime)
    assert running.error_code == 0

    succeeded = _wait(sdk, sdk_emulator, "hello", waiting_id, "SUCCESS")
    assert succeeded.error_code == 0
    assert succeeded.end_time

    failed_id = _start(sdk, sdk_emulator, "fail", {"value": "sdk"})
    failed = _wait(sdk, sdk_emulator, "fail", failed_id, "FAIL")
    assert isinstance(failed.error_code, int)
    assert failed.error_code != 0
    assert "bad input" in failed.error_message


def test_cancel_answers_null_and_discards(sdk: Any, sdk_emulator: FunctionGraphEmulator) -> None:
    request_id = _start(sdk, sdk_emulator, "sleep", {"seconds": 10})
    _wait(sdk, sdk_emulator, "sleep", request_id, "RUNNING")
    response = conforms(
        sdk.cancel_async_invocation(
            CancelAsyncInvocationRequest(
                function_urn=sdk_emulator.urn("sleep"),
                body=CancelAsyncInvocationRequestBody(request_id=request_id, type="recursive"),
            )
        )
    )
    assert response.status_code == 200
    discarded = _wait(sdk, sdk_emulator, "sleep", request_id, "DISCARD")
    assert isinstance(discarded.error_code, int)


def test_list_async_invocations_pages(sdk: Any, sdk_emulator: FunctionGraphEmulator) -> None:
    for _ in range(3):
        _start(sdk, sdk_emulator, "noop", {})
    response = conforms(
        sdk.list_async_invocations(
            ListAsyncInvocationsRequest(function_urn=sdk_emulator.urn("noop"), limit="2")
        )
    )
    assert len(response.invocations) == 2
    assert response.count >= 3
    assert response.next_marker == 2


def test_list_functions(sdk: Any) -> None:
    response = conforms(sdk.list_functions(ListFunctionsRequest()))
    assert "hello" in {function.func_name for function in response.functions}
    assert isinstance(response.count, int)


def test_function_config(sdk: Any, sdk_emulator: FunctionGraphEmulator) -> None:
    response = conforms(
        sdk.show_function_config(ShowFunctionConfigRequest(function_urn=sdk_emulator.urn("echo")))
    )
    assert (response.func_name, response.timeout, response.memory_size) == ("echo", 5, 256)


@pytest.mark.parametrize(
    "record",
    [{"error_code": ""}, {"error_code": "0"}, {"start_time": "not a time"}, {"unknown": 1}],
)
def test_conformance_check_can_fail(record: dict[str, Any]) -> None:
    """The checker rejects what the SDK would misread (so the tests above can fail)."""
    with pytest.raises((AssertionError, ValueError)):
        assert_conforms(record, "ListFunctionAsyncInvocationsResult")
