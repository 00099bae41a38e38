"""The compatibility module picks what the running Airflow line provides."""

from __future__ import annotations

import asyncio
import importlib
import threading
from importlib.metadata import version

import pytest

from airflow_provider_fgs import compat


def test_the_running_airflow_line_is_read_from_the_installed_release() -> None:
    major, minor = (int(part) for part in version("apache-airflow").split(".")[:2])
    assert (major, minor) == compat.AIRFLOW_VERSION
    assert compat.AIRFLOW_V_3_2_PLUS is ((major, minor) >= (3, 2))


def test_conf_is_the_configuration_of_the_running_line(monkeypatch: pytest.MonkeyPatch) -> None:
    where = "airflow.sdk" if compat.AIRFLOW_V_3_2_PLUS else "airflow.configuration"
    assert compat.conf is importlib.import_module(where).conf
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "true")
    assert compat.conf.getboolean("operators", "default_deferrable", fallback=False) is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "false")
    assert compat.conf.getboolean("operators", "default_deferrable", fallback=True) is False


def test_a_feature_of_a_newer_line_fails_with_its_name_and_the_version_it_needs() -> None:
    newer = (compat.AIRFLOW_VERSION[0], compat.AIRFLOW_VERSION[1] + 1)
    with pytest.raises(RuntimeError) as raised:
        compat.require_airflow(newer, "Frobnicating functions")
    message = str(raised.value)
    assert f"Frobnicating functions needs Airflow {newer[0]}.{newer[1]} or newer" in message
    assert version("apache-airflow") in message


def test_a_feature_of_the_running_line_or_older_passes() -> None:
    compat.require_airflow(compat.AIRFLOW_VERSION, "Anything")
    compat.require_airflow((3, 1), "Anything")


def test_to_thread_runs_the_blocking_call_off_the_event_loop() -> None:
    async def main() -> tuple[int, int]:
        return threading.get_ident(), await compat.to_thread(threading.get_ident)

    loop_thread, worker_thread = asyncio.run(main())
    assert worker_thread != loop_thread


@pytest.mark.skipif(compat.AIRFLOW_V_3_2_PLUS, reason="3.2's triggerer answers sync calls from any thread")
def test_on_3_1_a_sync_sdk_call_in_the_worker_thread_reaches_the_triggers_event_loop() -> None:
    # 3.1's triggerer sends the Task SDK's sync calls with asgiref's async_to_sync, made in the calling
    # thread (as TriggerCommsDecoder.send does); it must land on the trigger's own event loop, where the
    # replies are read in order.
    from asgiref.sync import async_to_sync

    async def running_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def sync_sdk_call() -> asyncio.AbstractEventLoop:
        return async_to_sync(running_loop)()

    async def main() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
        return asyncio.get_running_loop(), await compat.to_thread(sync_sdk_call)

    trigger_loop, reached = asyncio.run(main())
    assert reached is trigger_loop


def test_stats_is_the_metrics_client_of_the_running_line() -> None:
    where = "airflow.sdk.observability.stats" if compat.AIRFLOW_V_3_2_PLUS else "airflow.stats"
    assert compat.Stats is importlib.import_module(where).Stats
