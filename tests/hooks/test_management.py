"""FunctionGraphHook's management calls against a private emulator: deploy, configure, publish, alias."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.protocol.errors import (
    FunctionGraphApiError,
    FunctionGraphError,
    InvalidRequestError,
)
from tests.connections import ConnFactory, connection_factory
from tests.hooks.conftest import FAST_RETRIES
from tests.release_support import code_dir, release_emulator


@pytest.fixture
def release_emu(tmp_path: Path) -> Iterator[FunctionGraphEmulator]:
    with release_emulator(tmp_path) as emu:
        yield emu


@pytest.fixture(params=["aksk", "password"])
def hook(
    request: pytest.FixtureRequest, release_emu: FunctionGraphEmulator, monkeypatch: pytest.MonkeyPatch
) -> FunctionGraphHook:
    factory: ConnFactory = connection_factory(
        release_emu, monkeypatch, default_mode="aksk", prefix="fg_release", defaults=FAST_RETRIES
    )
    return FunctionGraphHook(functiongraph_conn_id=factory(request.param))


def test_deploy_configure_publish_and_alias(
    hook: FunctionGraphHook, release_emu: Any, tmp_path: Path
) -> None:
    assert hook.invoke("greeter").result == {"greeting": "hello v1", "version": "latest"}
    assert hook.publish_version("greeter", version="v1") == "v1"

    timeout_before = hook.get_function_config("greeter").timeout
    answer = hook.update_function_code("greeter", code_dir(tmp_path, "hello v2"), handler="index.handler")
    config = hook.update_function_config(
        "greeter", handler="index.handler", memory_size=256, environment={"STAGE": "canary"}
    )
    assert (config.handler, config.memory_size, config.environment) == (
        "index.handler",
        256,
        {"STAGE": "canary"},
    )
    assert config.timeout == timeout_before  # kept: only what was given changes
    assert hook.get_function_config("greeter").digest == answer["digest"]
    assert hook.get_function_code("greeter")["code_size"] == answer["code_size"]
    assert hook.invoke("greeter").result == {"greeting": "hello v2", "version": "latest"}

    published = hook.publish_function_version("greeter", version="v2", description="second")
    assert (published.version, published.handler, published.digest) == (
        "v2",
        "index.handler",
        answer["digest"],
    )
    assert [v.version for v in hook.list_versions("greeter")] == ["latest", "v1", "v2"]
    assert hook.get_function_config(release_emu.urn("greeter", "v1")).handler == "greeter.handler"

    assert hook.get_alias("greeter", "canary") is None
    alias, created = hook.set_alias("greeter", "canary", "v1", weights={"v2": 10})
    assert created
    assert (alias.version, alias.weights) == ("v1", {"v2": 10})
    runs = [
        hook.invoke(hook.resolve_urn(function_name="greeter", alias="canary")).result["version"]
        for _ in range(40)
    ]
    assert set(runs) == {"v1", "v2"}
    alias, created = hook.set_alias("greeter", "canary", "v2")
    assert not created
    assert (alias.version, alias.weights) == ("v2", {})
    assert hook.get_alias("greeter", "canary") == alias
    assert hook.list_aliases("greeter") == [alias]

    hook.delete_alias("greeter", "canary")
    assert hook.list_aliases("greeter") == []
    hook.delete_function("greeter", version="v1")
    assert [v.version for v in hook.list_versions("greeter")] == ["latest", "v2"]
    hook.delete_function("greeter")
    with pytest.raises(FunctionGraphApiError) as gone:
        hook.get_function_config("greeter")
    assert gone.value.error_code == "FSS.1051"


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda h, t: h.update_function_code("greeter", t / "missing.zip"), "missing.zip"),
        (
            lambda h, t: h.update_function_code("greeter", t / "other.zip", handler="index.handler"),
            "index.py",
        ),
        (lambda h, t: h.update_function_code("greeter", t / "notzip.zip"), "notzip.zip"),
        (lambda h, t: h.set_alias("greeter", "canary", "v1", weights={"v2": 60, "v3": 50}), "110"),
        (lambda h, t: h.set_alias("greeter", "canary", "v1", weights={"v1": 10}), "'v1'"),
        (lambda h, t: h.update_alias("greeter", "canary", "v1", weights={"v2": -1}), "-1"),
        (lambda h, t: h.update_alias("greeter", "bad alias", "v1"), "bad alias"),
        (lambda h, t: h.publish_version("greeter", version="latest"), "latest"),
        (lambda h, t: h.publish_version("greeter", version="no spaces"), "no spaces"),
        (lambda h, t: h.delete_function("greeter", version="latest"), "latest"),
        (lambda h, t: h.update_function_config("greeter", memory_size=100), "100"),
        (lambda h, t: h.update_function_config("greeter", timeout=1), "1"),
        (lambda h, t: h.update_function_config("greeter", handler="index"), "index"),
        (lambda h, t: h.update_function_config("greeter"), "Nothing to change"),
    ],
)
def test_bad_input_fails_before_any_call(
    hook: FunctionGraphHook, release_emu: Any, tmp_path: Path, call: Any, named: str
) -> None:
    (tmp_path / "other.zip").write_bytes(_zip({"main.py": "def handler(e, c): pass\n"}))
    (tmp_path / "notzip.zip").write_text("not a zip")
    release_emu.reset_stats()
    with pytest.raises(InvalidRequestError, match=named.replace("(", r"\(")):
        call(hook, tmp_path)
    assert release_emu.request_count() - release_emu.request_count("token") == 0


def test_platform_refusals_are_typed_and_name_the_target(hook: FunctionGraphHook, release_emu: Any) -> None:
    with pytest.raises(FunctionGraphApiError) as unknown:
        hook.set_alias("greeter", "canary", "v9")
    assert unknown.value.error_code == "FSS.1052"
    assert "v9" in str(unknown.value)
    hook.publish_version("greeter", version="v1")
    with pytest.raises(FunctionGraphApiError) as twice:
        hook.publish_version("greeter", version="v1")
    assert twice.value.error_code == "FSS.0400"
    assert "already exists" in str(twice.value)
    with pytest.raises(FunctionGraphApiError) as missing:
        hook.update_function_code("nosuch", _zip_path_of(hook, release_emu))
    assert missing.value.error_code == "FSS.1051"


def _zip_path_of(hook: FunctionGraphHook, release_emu: Any) -> Any:
    from airflow_provider_fgs.client.code_package import CodePackage

    data = _zip({"index.py": "def handler(e, c): return 1\n"})
    return CodePackage(data=data, filename="code.zip", sha256="", files=("index.py",))


def test_a_publish_is_sent_once_but_an_alias_update_is_retried(
    hook: FunctionGraphHook, release_emu: Any
) -> None:
    hook.publish_version("greeter", version="v1")
    hook.set_alias("greeter", "stable", "v1")
    release_emu.reset_stats()
    # The answer is lost after the platform acted: a publish is not sent again (a second one would fail
    # or make a second version), an alias update to a given version is.
    release_emu.inject_fault("drop_after", count=1, route="publish_version")
    with pytest.raises(FunctionGraphError, match="may have reached"):
        hook.publish_version("greeter", version="v2")
    assert release_emu.request_count("publish_version") == 1
    assert [v.version for v in hook.list_versions("greeter")] == ["latest", "v1", "v2"]

    release_emu.inject_fault("drop_after", count=1, route="update_alias")
    assert hook.update_alias("greeter", "stable", "v2").version == "v2"
    assert release_emu.request_count("update_alias") == 2

    release_emu.inject_fault("drop_after", count=1, route="update_code")
    with pytest.raises(FunctionGraphError, match="may have reached"):
        hook.update_function_code("greeter", _zip_path_of(hook, release_emu))
    assert release_emu.request_count("update_code") == 1

    release_emu.inject_fault("unavailable", count=1, route="config")
    assert hook.get_function_config("greeter").func_name == "greeter"
    assert release_emu.request_count("config") == 2
    assert json.dumps(hook.get_function_config("greeter").to_dict())
