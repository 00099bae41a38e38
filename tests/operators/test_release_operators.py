"""
The release operators and FunctionUpdatedSensor: parse-time checks, and runs against a private emulator.

``execute()``/``poke()`` are called directly with a context whose task instance records XCom pushes; the
whole DAG (real XCom, templates, the params form) runs in ``tests/dags/test_example_dags.py``.
"""

from __future__ import annotations

import asyncio
import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from airflow.sdk import Context

from airflow_provider_fgs.compat import TaskDeferred
from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.operators.release import (
    PublishFunctionVersionOperator,
    UpdateFunctionAliasOperator,
    UpdateFunctionCodeOperator,
)
from airflow_provider_fgs.protocol.errors import FunctionGraphApiError, InvalidRequestError
from airflow_provider_fgs.sensors.release import FunctionUpdatedSensor
from airflow_provider_fgs.triggers.release import FunctionUpdatedTrigger
from tests.connections import connection_factory
from tests.operators.test_invoke_function_operator import make_context
from tests.release_support import code_dir, release_emulator
from tests.triggering import first_event


def _zip(path: Path, files: dict[str, str]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    path.write_bytes(buffer.getvalue())
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- checked when the DAG is parsed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (
            lambda t: UpdateFunctionCodeOperator(
                task_id="d", function_name="greeter", code_path=str(code_dir(t, "y")), memory_size=100
            ),
            "100",
        ),
        (
            lambda t: PublishFunctionVersionOperator(task_id="p", function_name="f", version="latest"),
            "latest",
        ),
        (lambda t: PublishFunctionVersionOperator(task_id="p", function_name="f", version="v 2"), "v 2"),
        (
            lambda t: UpdateFunctionAliasOperator(
                task_id="a",
                function_name="f",
                alias_name="canary",
                version="v1",
                weights={"v2": 70, "v3": 40},
            ),
            "110",
        ),
        (
            lambda t: UpdateFunctionAliasOperator(
                task_id="a",
                function_name="f",
                alias_name="canary",
                version="v1",
                canary_version="v2",
                canary_weight=101,
            ),
            "101",
        ),
        (
            lambda t: UpdateFunctionAliasOperator(
                task_id="a", function_name="f", alias_name="canary", version="v1", canary_version="v2"
            ),
            "canary_weight",
        ),
        (
            lambda t: UpdateFunctionAliasOperator(
                task_id="a", function_name="f", alias_name="9lives", version="v1"
            ),
            "9lives",
        ),
        (
            lambda t: FunctionUpdatedSensor(task_id="s", function_name="f"),
            "expected_digest or expected_config",
        ),
        (
            lambda t: FunctionUpdatedSensor(
                task_id="s", function_name="f", expected_config={"colour": "red"}
            ),
            "colour",
        ),
        (
            lambda t: UpdateFunctionAliasOperator(
                task_id="a", function_urn="urn:fss:x", function_name="f", alias_name="c", version="v1"
            ),
            "function_urn='urn:fss:x'",
        ),
    ],
)
def test_bad_arguments_fail_at_parse_time_naming_the_value(tmp_path: Path, make: Any, named: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        make(tmp_path)
    assert named in str(refused.value)


def test_templated_values_are_checked_after_rendering() -> None:
    UpdateFunctionCodeOperator(task_id="d", function_name="f", code_path="{{ params.path }}")
    PublishFunctionVersionOperator(task_id="p", function_name="f", version="{{ params.version }}")
    UpdateFunctionAliasOperator(
        task_id="a",
        function_name="f",
        alias_name="canary",
        version="{{ params.stable }}",
        canary_version="{{ ti.xcom_pull(task_ids='p') }}",
        canary_weight="{{ params.weight }}",
    )
    operator = UpdateFunctionAliasOperator(
        task_id="b",
        function_name="f",
        alias_name="canary",
        version="v1",
        canary_version="v2",
        canary_weight="{{ w }}",
    )
    operator.canary_weight = "250"  # what rendering would leave
    with pytest.raises(InvalidRequestError, match="250"):
        operator.execute(make_context()[0])


# -- against the emulator ---------------------------------------------------------------------------


@pytest.fixture
def release_emu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FunctionGraphEmulator]:
    with release_emulator(tmp_path) as emu:
        factory = connection_factory(
            emu, monkeypatch, default_mode="aksk", prefix="fg_ops", defaults={"retry_min_wait": 0.01}
        )
        conn_id = factory()  # the operators use functiongraph_default: make it the same connection
        monkeypatch.setenv(
            "AIRFLOW_CONN_FUNCTIONGRAPH_DEFAULT", os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]
        )
        yield emu


# The code is read when the task runs, on the worker: a DAG processor need not see the same files.
@pytest.mark.parametrize(
    ("make", "named"),
    [
        (
            lambda t: UpdateFunctionCodeOperator(
                task_id="d", function_name="greeter", code_path=str(t / "nope")
            ),
            "nope",
        ),
        (
            lambda t: UpdateFunctionCodeOperator(
                task_id="d",
                function_name="f",
                code_path=str(_zip(t / "c.zip", {"main.py": ""})),
                handler="index.handler",
            ),
            "'index.py'",
        ),
        (
            lambda t: UpdateFunctionCodeOperator(
                task_id="d", function_name="greeter", code_path=str(code_dir(t, "x")), handler="app.main"
            ),
            "'app.py'",
        ),
        (
            lambda t: UpdateFunctionCodeOperator(
                task_id="d", function_name="greeter", code_path=str(_write(t / "code.zip", "not a zip"))
            ),
            "is not a zip file",
        ),
    ],
)
def test_bad_code_sources_fail_the_task_before_any_call(
    release_emu: Any, tmp_path: Path, make: Any, named: str
) -> None:
    hook = FunctionGraphHook()
    digest_before = hook.get_function_config("greeter").digest
    operator = make(tmp_path)  # parsing never reads the code
    with pytest.raises(InvalidRequestError) as refused:
        operator.execute(make_context()[0])
    assert named in str(refused.value)
    assert hook.get_function_config("greeter").digest == digest_before


def test_release_operators_deploy_publish_and_shift(release_emu: Any, tmp_path: Path) -> None:
    context, ti = make_context()
    deployed = UpdateFunctionCodeOperator(
        task_id="deploy",
        function_name="greeter",
        code_path=str(code_dir(tmp_path, "hello v2")),
        handler="index.handler",
        memory_size="256",
        environment={"STAGE": "canary"},
    ).execute(context)
    assert ti.xcoms["digest"] == deployed["digest"]
    assert deployed["config"]["memory_size"] == 256
    assert deployed["config"]["environment"] == {"STAGE": "canary"}

    sensor = FunctionUpdatedSensor(
        task_id="wait",
        function_name="greeter",
        expected_digest=deployed["digest"],
        expected_config={"memory_size": 256},
    )
    poked = sensor.poke(context)
    assert not isinstance(poked, bool)
    assert poked.is_done
    assert poked.xcom_value["handler"] == "index.handler"
    waiting = FunctionUpdatedSensor(
        task_id="wait2", function_name="greeter", expected_config={"memory_size": 512}
    )
    assert waiting.poke(context) is False

    assert (
        PublishFunctionVersionOperator(task_id="p1", function_name="greeter", version="v2").execute(context)
        == "v2"
    )
    # A retry of the publish task finds its version and reuses it: no second publish.
    release_emu.reset_stats()
    assert (
        PublishFunctionVersionOperator(task_id="p1", function_name="greeter", version="v2").execute(context)
        == "v2"
    )
    assert release_emu.request_count("publish_version") == 0

    canary = UpdateFunctionAliasOperator(
        task_id="canary",
        function_name="greeter",
        alias_name="canary",
        version="latest",
        canary_version="v2",
        canary_weight="10",
    ).execute(context)
    assert canary["created"] is True
    assert (canary["version"], canary["weights"]) == ("latest", {"v2": 10})
    promoted = UpdateFunctionAliasOperator(
        task_id="promote", function_name="greeter", alias_name="canary", version="v2"
    ).execute(context)
    assert (promoted["created"], promoted["version"], promoted["weights"]) == (False, "v2", {})


def test_unknown_versions_fail_before_the_alias_is_touched(release_emu: Any) -> None:
    release_emu.reset_stats()
    operator = UpdateFunctionAliasOperator(
        task_id="a", function_name="greeter", alias_name="canary", version="latest", weights={"v7": 5}
    )
    with pytest.raises(InvalidRequestError, match=r"\['v7'\]"):
        operator.execute(make_context()[0])
    assert release_emu.request_count("create_alias") + release_emu.request_count("update_alias") == 0


def test_publishing_a_taken_version_name_with_other_code_fails(release_emu: Any, tmp_path: Path) -> None:
    context, _ = make_context()
    PublishFunctionVersionOperator(task_id="p", function_name="greeter", version="v1").execute(context)
    UpdateFunctionCodeOperator(
        task_id="d",
        function_name="greeter",
        code_path=str(code_dir(tmp_path, "new")),
        handler="index.handler",
    ).execute(context)
    with pytest.raises(InvalidRequestError, match=r"'v1' .* already exists with other code"):
        PublishFunctionVersionOperator(task_id="p", function_name="greeter", version="v1").execute(context)


def test_platform_errors_fail_the_task_typed(release_emu: Any, tmp_path: Path) -> None:
    with pytest.raises(FunctionGraphApiError) as missing:
        UpdateFunctionCodeOperator(
            task_id="d", function_name="nosuch", code_path=str(code_dir(tmp_path, "x"))
        ).execute(make_context()[0])
    assert missing.value.error_code == "FSS.1051"


def test_the_deferrable_sensor_waits_in_the_trigger(release_emu: Any, tmp_path: Path) -> None:
    sensor = FunctionUpdatedSensor(
        task_id="wait",
        function_name="greeter",
        expected_config={"handler": "index.handler"},
        deferrable=True,
        poke_interval=0.2,
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(make_context()[0])
    trigger = deferred.value.trigger
    assert isinstance(trigger, FunctionUpdatedTrigger)
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_fgs.triggers.release.FunctionUpdatedTrigger"
    rebuilt = FunctionUpdatedTrigger(**kwargs)

    async def deploy_later_then_wait() -> Any:
        waiting = asyncio.ensure_future(first_event(rebuilt))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # still the old handler
        await asyncio.to_thread(
            UpdateFunctionCodeOperator(
                task_id="d",
                function_name="greeter",
                code_path=str(code_dir(tmp_path, "later")),
                handler="index.handler",
            ).execute,
            make_context()[0],
        )
        return await waiting

    event = asyncio.run(deploy_later_then_wait())
    assert event.payload["status"] == "done"
    config = sensor.execute_complete(make_context()[0], event.payload)
    assert config["handler"] == "index.handler"


def test_the_trigger_reports_a_refused_read(release_emu: Any) -> None:
    from airflow_provider_fgs.protocol.errors import error_from_event

    trigger = FunctionUpdatedTrigger(
        functiongraph_conn_id="functiongraph_default", function_urn=release_emu.urn("nosuch"), digest="abc"
    )
    event = asyncio.run(first_event(trigger))
    assert event.payload["status"] == "error"
    assert error_from_event(event.payload["error"]).error_code == "FSS.1051"  # type: ignore[attr-defined]
    sensor = FunctionUpdatedSensor(task_id="s", function_name="nosuch", expected_digest="abc")
    with pytest.raises(FunctionGraphApiError):
        sensor.execute_complete(cast("Context", {}), event.payload)
