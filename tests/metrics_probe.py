"""
Run by ``tests/client/test_metrics.py`` (``python -m tests.metrics_probe``) in a process of its own, whose
Airflow sends its metrics to the test's StatsD listener (``[metrics]`` from the environment): one scenario
per provider event, each against the emulator (``FGS_PROBE_EMULATOR``: its region and project) with the
connections the test put in the environment. Before each scenario it sends a marker line
``probe.<scenario>:1|c`` to the same listener, and ``probe.end:1|c`` at the end, so the test tells the
scenarios' metrics apart.

The emulator's faults are set by the test: a throttled answer for the first invocation of ``noop`` and
of ``text``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from airflow.triggers.base import BaseTrigger

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.protocol.errors import FunctionGraphError
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.triggers.claims import TaskTry, write_claim
from airflow_provider_fgs.triggers.functiongraph import (
    FunctionGraphAsyncInvocationTrigger,
    FunctionGraphInvokeTrigger,
)
from tests.triggers.supervisor import InterleavingSupervisor

AKSK = "metrics_aksk"
PASSWORD = "metrics_password"
BAD_KEY = "metrics_bad_key"
BAD_PASSWORD = "metrics_bad_password"
TASK_TRY = TaskTry(dag_id="metrics", run_id="r", task_id="invoke", map_index=-1, try_number=1)


def invoke(conn_id: str, function: str) -> None:
    """A synchronous invocation through the sync hook; a refused call is expected in some scenarios."""
    with contextlib.suppress(FunctionGraphError):
        FunctionGraphHook(conn_id).invoke(function_name=function, payload={"probe": True})


def urn(function: str) -> str:
    emulator = json.loads(os.environ["FGS_PROBE_EMULATOR"])
    return f"urn:fss:{emulator['region']}:{emulator['project_id']}:function:default:{function}:latest"


async def fire(trigger: BaseTrigger) -> list[Any]:
    return [event.payload async for event in trigger.run()]


def invoke_trigger(function: str, task_try: TaskTry | None = None) -> FunctionGraphInvokeTrigger:
    return FunctionGraphInvokeTrigger(
        functiongraph_conn_id=AKSK,
        invocation=Invocation(function_urn=urn(function), payload={"probe": True}).check().to_dict(),
        task_try=task_try.to_dict() if task_try is not None else None,
    )


def outcome_unknown() -> None:
    """A trigger started again finds the claim of a run that is gone: it fails safe without sending."""
    from airflow.sdk.execution_time import task_runner

    task_runner.SUPERVISOR_COMMS = InterleavingSupervisor(seed=0)

    async def scenario() -> list[Any]:
        await write_claim(TASK_TRY, state="sent", nonce="gone-run", until=time.time() - 3600)
        return await fire(invoke_trigger("echo", TASK_TRY))

    events = asyncio.run(scenario())
    assert events[0]["error"]["type"] == "InvocationOutcomeUnknownError", events


def cool_down() -> None:
    """An AK/SK the gateway rejects: the second call is not sent."""
    invoke(BAD_KEY, "echo")
    invoke(BAD_KEY, "echo")


def deferred() -> None:
    """The deferrable path: the trigger's call through the async hook, throttled once, then answered."""
    asyncio.run(fire(invoke_trigger("text")))


def async_waited_in_the_triggerer(function: str) -> None:
    """An async invocation started through the sync hook, its end seen by the deferred wait's trigger."""
    request_id = FunctionGraphHook(AKSK).invoke_async(urn(function), {"probe": True})
    trigger = FunctionGraphAsyncInvocationTrigger(
        functiongraph_conn_id=AKSK, function_urn=urn(function), request_id=request_id, poll_interval=0.1
    )
    events = asyncio.run(fire(trigger))
    assert events[0]["status"] == "done", events


def async_refused() -> None:
    """An async invocation of a function that does not exist: refused, nothing to wait for."""
    with contextlib.suppress(FunctionGraphError):
        FunctionGraphHook(AKSK).invoke_async(urn("no_such_function"), {"probe": True})


SCENARIOS: dict[str, Callable[[], None]] = {
    "success": lambda: invoke(AKSK, "echo"),
    "function_error": lambda: invoke(AKSK, "fail"),
    "throttled": lambda: invoke(AKSK, "noop"),
    "platform_error": lambda: invoke(AKSK, "no_such_function"),
    "token_fetch": lambda: invoke(PASSWORD, "echo"),
    "token_refused": lambda: invoke(BAD_PASSWORD, "echo"),
    "cool_down": cool_down,
    "deferred": deferred,
    "outcome_unknown": outcome_unknown,
    "async_success": lambda: async_waited_in_the_triggerer("echo"),
    "async_fail": lambda: async_waited_in_the_triggerer("fail"),
    "async_refused": async_refused,
}


def main() -> None:
    marker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener = ("127.0.0.1", int(os.environ["AIRFLOW__METRICS__STATSD_PORT"]))
    for name, scenario in SCENARIOS.items():
        marker.sendto(f"probe.{name}:1|c".encode(), listener)
        scenario()
    marker.sendto(b"probe.end:1|c", listener)


if __name__ == "__main__":
    main()
