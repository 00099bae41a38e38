"""
The provider's metrics, as Airflow's own metrics client sends them to StatsD.

Airflow configures its metrics client once per process, from ``[metrics]``; so the events happen in a
process of their own (``tests/metrics_probe.py``) whose environment turns StatsD on, pointed at a UDP
listener of this test, with the tags sent InfluxDB style. The calls go to the session's emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fgs.client import metrics
from airflow_provider_fgs.client.retry import TransportError
from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.protocol.errors import (
    CredentialCoolDownError,
    NotFoundError,
    ThrottledError,
)
from airflow_provider_fgs.protocol.invoke import InvocationResult
from tests.connections import DEMO_KEY, DEMO_USER, emulator_extra
from tests.machine import require
from tests.statsd_listener import Metric, StatsdListener, statsd_missing_reason

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "tests.metrics_probe"  # run as a module from ROOT: as a script, tests/packaging would shadow packaging
)
PROBE_TIMEOUT_S = 120.0


def _connections(emulator: FunctionGraphEmulator) -> dict[str, str]:
    """The probe's connections (``AIRFLOW_CONN_*``): good and bad AK/SK, good and bad IAM password."""
    extra = emulator_extra(emulator, retry_min_wait=0.05, retry_max_wait=0.2)
    password_extra = {**extra, "domain_name": DEMO_USER[0]}
    wrong = f"wrong-{time.time_ns()}"  # a credential never seen before: no cool-down from another run
    connections = {
        "metrics_aksk": (DEMO_KEY[0], DEMO_KEY[1], extra),
        "metrics_bad_key": (DEMO_KEY[0], wrong, extra),
        "metrics_password": (DEMO_USER[1], DEMO_USER[2], password_extra),
        "metrics_bad_password": (DEMO_USER[1], wrong, password_extra),
    }
    return {
        f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(
            {"conn_type": "functiongraph", "login": login, "password": password, "extra": extras}
        )
        for conn_id, (login, password, extras) in connections.items()
    }


def _by_scenario(received: list[Metric]) -> dict[str, list[Metric]]:
    """The metrics that followed each marker ``probe.<scenario>`` of the probe."""
    scenarios: dict[str, list[Metric]] = {}
    current: list[Metric] | None = None
    for metric in received:
        if metric.name.startswith("probe."):
            current = scenarios.setdefault(metric.name.removeprefix("probe."), [])
        elif current is not None and metric.name.startswith(f"{metrics.PREFIX}."):
            current.append(metric)
    return scenarios


@pytest.fixture(scope="module")
def emitted(emulator: FunctionGraphEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """What the probe's scenarios sent, by scenario: ``emitted["success"]`` is a list of :class:`Metric`."""
    require(statsd_missing_reason())
    host_cache = tmp_path_factory.mktemp("metrics-host-cache")  # no token or cool-down of other tests
    with StatsdListener() as listener:
        env = {
            **os.environ,
            **listener.airflow_env(tags=True),
            **_connections(emulator),
            "AIRFLOW__FUNCTIONGRAPH__HOST_CACHE_DIR": str(host_cache),
            "FGS_PROBE_EMULATOR": json.dumps({"region": emulator.region, "project_id": emulator.project_id}),
        }
        emulator.inject_fault("throttle", count=1, function="noop", route="invoke")
        emulator.inject_fault("throttle", count=1, function="text", route="invoke")
        try:
            probe = subprocess.run(
                [sys.executable, "-m", PROBE],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_S,
            )
        finally:
            emulator.clear_faults()
        assert probe.returncode == 0, probe.stdout[-3000:] + probe.stderr[-3000:]
        deadline = time.monotonic() + 5
        while not any(m.name == "probe.end" for m in listener.metrics("probe.")):
            assert time.monotonic() < deadline, "the probe's last marker never arrived"
            time.sleep(0.05)
        yield _by_scenario(listener.metrics())


def _find(received: list[Metric], name: str, **tags: str) -> Metric:
    """The one metric called ``name`` whose tags include ``tags``."""
    found = [m for m in received if m.name == name and tags.items() <= m.tags.items()]
    assert len(found) == 1, f"{name} {tags}: {found} in {received}"
    return found[0]


def _names(received: list[Metric]) -> set[str]:
    return {metric.name for metric in received}


def test_a_successful_invocation_is_counted_timed_and_billed(emitted: dict[str, list[Metric]]) -> None:
    received = emitted["success"]
    assert _find(received, "functiongraph.invocation.success", function="echo").value == 1
    assert _find(received, "functiongraph.function.echo.success").value == 1
    latency = _find(received, "functiongraph.invocation.latency", function="echo", outcome="success")
    assert latency.kind == "ms"
    assert latency.value > 0
    billed = _find(received, "functiongraph.invocation.billed_duration", function="echo")
    assert billed.kind == "ms"
    assert billed.value >= 1
    mb_ms = _find(received, "functiongraph.invocation.billed_mb_ms", function="echo")
    assert mb_ms.kind == "c"
    assert mb_ms.value == billed.value * 256  # echo.json: 256 MB
    assert _names(received) == {
        "functiongraph.invocation.success",
        "functiongraph.function.echo.success",
        "functiongraph.invocation.latency",
        "functiongraph.invocation.billed_duration",
        "functiongraph.invocation.billed_mb_ms",
    }


def test_a_function_error_is_counted_with_its_error_code(emitted: dict[str, list[Metric]]) -> None:
    received = emitted["function_error"]
    _find(received, "functiongraph.invocation.function_error", function="fail", error_code="1")
    _find(received, "functiongraph.function.fail.function_error")
    _find(received, "functiongraph.invocation.latency", function="fail", outcome="function_error")
    assert "functiongraph.invocation.success" not in _names(received)


def test_a_throttled_answer_and_its_retry_are_counted(emitted: dict[str, list[Metric]]) -> None:
    received = emitted["throttled"]
    _find(received, "functiongraph.throttled", function="noop", error_code="FSS.0429")
    _find(received, "functiongraph.retries", function="noop", reason="ThrottledError")
    _find(received, "functiongraph.invocation.success", function="noop")


def test_a_refused_invocation_is_a_platform_error_by_code(emitted: dict[str, list[Metric]]) -> None:
    received = emitted["platform_error"]
    _find(
        received,
        "functiongraph.invocation.platform_error",
        function="no_such_function",
        error_code="FSS.1051",
    )
    _find(received, "functiongraph.function.no_such_function.platform_error")
    _find(received, "functiongraph.invocation.latency", function="no_such_function", outcome="platform_error")
    assert "functiongraph.retries" not in _names(received)


def test_an_iam_token_fetch_is_counted(emitted: dict[str, list[Metric]]) -> None:
    received = emitted["token_fetch"]
    _find(received, "functiongraph.iam.token_fetch.success", auth_type="password")
    _find(received, "functiongraph.invocation.success", function="echo")


def test_a_refused_password_fails_the_fetch_and_starts_a_cool_down(emitted: dict[str, list[Metric]]) -> None:
    received = emitted["token_refused"]
    _find(received, "functiongraph.iam.token_fetch.failure", auth_type="password")
    _find(received, "functiongraph.cooldown.started", auth_type="password")
    _find(received, "functiongraph.invocation.platform_error", function="echo")


def test_a_rejected_key_starts_a_cool_down_that_refuses_the_next_call(
    emitted: dict[str, list[Metric]],
) -> None:
    received = emitted["cool_down"]
    _find(received, "functiongraph.cooldown.started", auth_type="aksk")
    _find(received, "functiongraph.cooldown.refused", auth_type="aksk")
    _find(
        received,
        "functiongraph.invocation.platform_error",
        function="echo",
        error_code="CredentialCoolDownError",
    )
    rejected = [m for m in received if m.name == "functiongraph.invocation.platform_error"]
    assert len(rejected) == 2


def test_the_deferrable_path_emits_the_same_metrics(emitted: dict[str, list[Metric]]) -> None:
    received = emitted["deferred"]
    _find(received, "functiongraph.throttled", function="text", error_code="FSS.0429")
    _find(received, "functiongraph.retries", function="text", reason="ThrottledError")
    _find(received, "functiongraph.invocation.success", function="text")
    _find(received, "functiongraph.invocation.latency", function="text", outcome="success")


def test_an_unknown_outcome_is_counted_and_nothing_is_sent(emitted: dict[str, list[Metric]]) -> None:
    received = emitted["outcome_unknown"]
    _find(received, "functiongraph.invocation.outcome_unknown", function="echo")
    _find(received, "functiongraph.function.echo.outcome_unknown")
    assert "functiongraph.invocation.success" not in _names(received)


def test_an_async_invocation_is_counted_when_started_and_when_seen_ending(
    emitted: dict[str, list[Metric]],
) -> None:
    received = emitted["async_success"]
    _find(received, "functiongraph.async_invocation.started", function="echo")
    _find(received, "functiongraph.function.echo.async_started")
    _find(received, "functiongraph.async_invocation.success", function="echo")
    _find(received, "functiongraph.function.echo.async_success")
    assert not {name for name in _names(received) if name.startswith("functiongraph.invocation.")}


def test_a_failed_async_invocation_is_counted_with_its_error_code(emitted: dict[str, list[Metric]]) -> None:
    received = emitted["async_fail"]
    _find(received, "functiongraph.async_invocation.started", function="fail")
    failed = _find(received, "functiongraph.async_invocation.fail", function="fail")
    assert failed.tags["error_code"] not in ("", "0"), failed
    _find(received, "functiongraph.function.fail.async_fail")
    assert "functiongraph.async_invocation.success" not in _names(received)


def test_a_refused_async_invocation_is_a_platform_error_by_code(emitted: dict[str, list[Metric]]) -> None:
    received = emitted["async_refused"]
    _find(
        received,
        "functiongraph.async_invocation.platform_error",
        function="no_such_function",
        error_code="FSS.1051",
    )
    _find(received, "functiongraph.function.no_such_function.async_platform_error")
    assert "functiongraph.async_invocation.started" not in _names(received)


def test_every_emitted_name_is_a_documented_metric(emitted: dict[str, list[Metric]]) -> None:
    documented = set(metrics.METRICS)
    for received in emitted.values():
        for metric in received:
            name = metric.name
            if name.startswith("functiongraph.function."):
                name = "functiongraph.function.<function>.<outcome>"
            assert name in documented, name


# -- without a StatsD server: names and tags, emission that never raises, the docs ------------------------


def test_every_metric_is_documented() -> None:
    page = (ROOT / "docs" / "operating.md").read_text()
    assert [name for name in metrics.METRICS if f"| `{name}` |" not in page] == []


@pytest.mark.parametrize(
    ("function", "tag"),
    [
        ("urn:fss:ap-southeast-1:0123456789abcdef0123456789abcdef:function:default:resize:2", "resize"),
        ("resize-images_v2", "resize-images_v2"),
        ("odd.name with spaces", "odd_name_with_spaces"),
        ("urn:fss:broken", "unknown"),
        (None, "none"),
    ],
)
def test_the_function_tag_is_the_name_never_the_urn(function: str | None, tag: str) -> None:
    assert metrics.function_tag(function) == tag


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFoundError("gone", http_status=404, error_code="FSS.1051"), "FSS.1051"),
        (ThrottledError("slow down", http_status=429), "http_429"),
        (TransportError("reset", request_sent=None), "TransportError"),
        (
            CredentialCoolDownError("cooling", http_status=401, error_code="APIG.0301"),
            "CredentialCoolDownError",
        ),
        (RuntimeError("bug"), "RuntimeError"),
    ],
)
def test_the_error_code_tag_is_short_and_bounded(error: BaseException, code: str) -> None:
    assert metrics.error_code_of(error) == code


def test_a_failing_metrics_client_never_fails_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        @staticmethod
        def incr(*args: Any, **kwargs: Any) -> None:
            raise OSError("no route to the StatsD host")

        timing = incr

    monkeypatch.setattr(metrics, "Stats", Broken)
    result = InvocationResult(
        status_code=200, request_id="r", raw_result="{}", result={}, billing_duration_ms=3
    )
    metrics.invocation_answered("echo", 0.1, result)
    metrics.invocation_failed("echo", 0.1, RuntimeError("refused"))
    metrics.answer_throttled(ThrottledError("slow down", http_status=429), "echo")
    metrics.cool_down_started("aksk")
