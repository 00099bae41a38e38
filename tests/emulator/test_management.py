"""Function management on the emulator: deployed code runs, versions are snapshots, aliases split calls.

The official SDK's management calls (``huaweicloudsdkfunctiongraph``) are the client: if the emulator's
paths, bodies or answers differ from the SDK's models, the SDK fails here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fgs.client.code_package import load_code_package
from airflow_provider_fgs.emulator import FunctionGraphEmulator
from tests.emulator.conftest import official_sdk_client
from tests.release_support import code_dir, release_emulator


@pytest.fixture
def release_emu(tmp_path: Path) -> Iterator[FunctionGraphEmulator]:
    with release_emulator(tmp_path) as emu:
        yield emu


@pytest.fixture
def sdk(release_emu: FunctionGraphEmulator) -> Any:
    return official_sdk_client(release_emu)


def invoke(sdk: Any, urn: str) -> dict[str, Any]:
    from huaweicloudsdkfunctiongraph.v2 import InvokeFunctionRequest

    response = sdk.invoke_function(
        InvokeFunctionRequest(function_urn=urn, x_cff_request_version="v1", body={})
    )
    result: dict[str, Any] = json.loads(response.result)
    return result


def test_official_sdk_deploys_publishes_and_splits_an_alias(
    sdk: Any, release_emu: FunctionGraphEmulator, tmp_path: Path
) -> None:
    from huaweicloudsdkfunctiongraph.v2 import (
        CreateFunctionVersionRequest,
        CreateFunctionVersionRequestBody,
        CreateVersionAliasRequest,
        CreateVersionAliasRequestBody,
        DeleteFunctionRequest,
        DeleteVersionAliasRequest,
        FuncCode,
        ShowFunctionCodeRequest,
        ShowFunctionConfigRequest,
        ShowVersionAliasRequest,
        UpdateFunctionCodeRequest,
        UpdateFunctionCodeRequestBody,
        UpdateFunctionConfigRequest,
        UpdateFunctionConfigRequestBody,
        UpdateVersionAliasRequest,
        UpdateVersionAliasRequestBody,
    )

    urn = release_emu.urn("greeter").removesuffix(":latest")
    assert invoke(sdk, urn)["greeting"] == "hello v1"
    v1 = sdk.create_function_version(
        CreateFunctionVersionRequest(function_urn=urn, body=CreateFunctionVersionRequestBody(version="v1"))
    )
    assert v1.version == "v1"

    package = load_code_package(code_dir(tmp_path, "hello v2"), handler="index.handler")
    updated = sdk.update_function_code(
        UpdateFunctionCodeRequest(
            function_urn=urn,
            body=UpdateFunctionCodeRequestBody(
                code_type="zip",
                code_filename=package.filename,
                func_code=FuncCode(file=base64.b64encode(package.data).decode()),
            ),
        )
    )
    assert updated.code_size == len(package.data)
    assert updated.digest
    config = sdk.show_function_config(ShowFunctionConfigRequest(function_urn=urn))
    sdk.update_function_config(
        UpdateFunctionConfigRequest(
            function_urn=urn,
            body=UpdateFunctionConfigRequestBody(
                func_name="greeter",
                runtime=config.runtime,
                timeout=10,
                handler="index.handler",
                memory_size=256,
                user_data=json.dumps({"STAGE": "canary"}),
            ),
        )
    )
    config = sdk.show_function_config(ShowFunctionConfigRequest(function_urn=urn))
    assert (config.handler, config.memory_size, config.timeout) == ("index.handler", 256, 10)
    assert json.loads(config.user_data) == {"STAGE": "canary"}
    assert config.digest == updated.digest
    assert sdk.show_function_code(ShowFunctionCodeRequest(function_urn=urn)).digest == updated.digest
    assert invoke(sdk, urn) == {"greeting": "hello v2", "version": "latest"}

    v2 = sdk.create_function_version(
        CreateFunctionVersionRequest(function_urn=urn, body=CreateFunctionVersionRequestBody(version="v2"))
    )
    assert (v2.version, v2.handler, v2.memory_size) == ("v2", "index.handler", 256)
    # v1 is an immutable snapshot: the old code and the old configuration.
    assert invoke(sdk, f"{urn}:v1") == {"greeting": "hello v1", "version": "v1"}
    v1_config = sdk.show_function_config(ShowFunctionConfigRequest(function_urn=f"{urn}:v1"))
    assert (v1_config.handler, v1_config.memory_size) == ("greeter.handler", 128)

    created = sdk.create_version_alias(
        CreateVersionAliasRequest(
            function_urn=urn,
            body=CreateVersionAliasRequestBody(
                name="canary", version="v1", additional_version_weights={"v2": 10}
            ),
        )
    )
    assert created.additional_version_weights == {"v2": 10}
    assert created.alias_urn == f"{urn}:!canary"
    shown = sdk.show_version_alias(ShowVersionAliasRequest(function_urn=urn, alias_name="canary"))
    assert (shown.version, shown.additional_version_weights) == ("v1", {"v2": 10})
    versions = [invoke(sdk, f"{urn}:!canary")["version"] for _ in range(60)]
    assert 1 <= versions.count("v2") <= 15
    assert versions.count("v1") + versions.count("v2") == 60

    sdk.update_version_alias(
        UpdateVersionAliasRequest(
            function_urn=urn, alias_name="canary", body=UpdateVersionAliasRequestBody(version="v2")
        )
    )
    assert {invoke(sdk, f"{urn}:!canary")["version"] for _ in range(5)} == {"v2"}

    sdk.delete_version_alias(DeleteVersionAliasRequest(function_urn=urn, alias_name="canary"))
    sdk.delete_function(DeleteFunctionRequest(function_urn=f"{urn}:v1"))
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

    with pytest.raises(ClientRequestException) as gone:
        invoke(sdk, f"{urn}:v1")
    assert gone.value.error_code == "FSS.1052"
    sdk.delete_function(DeleteFunctionRequest(function_urn=urn))
    with pytest.raises(ClientRequestException) as deleted:
        invoke(sdk, urn)
    assert deleted.value.error_code == "FSS.1051"


def _zip_bytes(files: dict[str, str]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_invalid_changes_are_refused_with_fss_errors(sdk: Any, release_emu: FunctionGraphEmulator) -> None:
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
    from huaweicloudsdkfunctiongraph.v2 import (
        CreateFunctionVersionRequest,
        CreateFunctionVersionRequestBody,
        CreateVersionAliasRequest,
        CreateVersionAliasRequestBody,
        DeleteFunctionRequest,
        FuncCode,
        UpdateFunctionCodeRequest,
        UpdateFunctionCodeRequestBody,
        UpdateFunctionConfigRequest,
        UpdateFunctionConfigRequestBody,
    )

    urn = release_emu.urn("greeter").removesuffix(":latest")

    def refused(call: Any, request: Any) -> tuple[int, str, str]:
        with pytest.raises(ClientRequestException) as error:
            call(request)
        return error.value.status_code, error.value.error_code, error.value.error_msg

    def publish(version: str) -> Any:
        body = CreateFunctionVersionRequestBody(version=version)
        return CreateFunctionVersionRequest(function_urn=urn, body=body)

    def upload(data: bytes) -> Any:
        body = UpdateFunctionCodeRequestBody(
            code_type="zip", code_filename="c.zip", func_code=FuncCode(file=base64.b64encode(data).decode())
        )
        return UpdateFunctionCodeRequest(function_urn=urn, body=body)

    sdk.create_function_version(publish("v1"))
    assert refused(sdk.create_function_version, publish("v1"))[:2] == (400, "FSS.0400")
    for number in range(2, 11):
        sdk.create_function_version(publish(f"v{number}"))
    status, code, message = refused(sdk.create_function_version, publish("v11"))
    assert (status, code) == (400, "FSS.0400")
    assert "10 versions" in message

    alias = CreateVersionAliasRequestBody(name="stable", version="v1", additional_version_weights={"v9": 5})
    sdk.create_version_alias(CreateVersionAliasRequest(function_urn=urn, body=alias))
    assert (
        refused(sdk.create_version_alias, CreateVersionAliasRequest(function_urn=urn, body=alias))[1]
        == "FSS.0400"
    )
    in_use = refused(sdk.delete_function, DeleteFunctionRequest(function_urn=f"{urn}:v9"))
    assert in_use[1] == "FSS.0400"
    assert "stable" in in_use[2]
    too_heavy = CreateVersionAliasRequestBody(
        name="c", version="v1", additional_version_weights={"v2": 60, "v3": 41}
    )
    assert (
        "101"
        in refused(sdk.create_version_alias, CreateVersionAliasRequest(function_urn=urn, body=too_heavy))[2]
    )
    missing = CreateVersionAliasRequestBody(name="c", version="v42")
    assert refused(sdk.create_version_alias, CreateVersionAliasRequest(function_urn=urn, body=missing))[
        :2
    ] == (
        404,
        "FSS.1052",
    )

    assert "not a zip" in refused(sdk.update_function_code, upload(b"plain text"))[2]
    assert "unsafe path" in refused(sdk.update_function_code, upload(_zip_bytes({"../evil.py": "x = 1"})))[2]
    frozen = UpdateFunctionConfigRequestBody(
        func_name="greeter", runtime="Python3.10", timeout=10, handler="index.handler", memory_size=128
    )
    assert (
        "immutable"
        in refused(
            sdk.update_function_config, UpdateFunctionConfigRequest(function_urn=f"{urn}:v1", body=frozen)
        )[2]
    )
    bad_memory = UpdateFunctionConfigRequestBody(
        func_name="greeter", runtime="Python3.10", timeout=10, handler="index.handler", memory_size=100
    )
    assert (
        "memory_size"
        in refused(
            sdk.update_function_config, UpdateFunctionConfigRequest(function_urn=urn, body=bad_memory)
        )[2]
    )
