"""
Deferrable concurrency: N invocations of a handler that sleeps 1 s, started at once through one
triggerer-style event loop, against N made one after another.

The emulator runs as a separate process (``fgs-emulator``) so the memory reported is the client's own.
The serial figure is measured on a sample of calls and scaled to N (running 200 serial one-second
calls would take over three minutes); both are printed with their ratio.

Run: ``python bench/bench_deferrable.py [--invocations 200] [--sleep 1.0] [--serial-sample 5]``
Target (issue 5): 200 invocations under 10 s wall on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

from _emulator import emulator_process

HANDLER = """
import time

def handler(event, context):
    time.sleep(float(event.get("seconds", 1)))
    return {"slept": event.get("seconds", 1), "n": event.get("n")}
"""
CONN_ID = "fgs_bench"
TARGET_SECONDS = 10.0


def configure_connection(url: str) -> None:
    from airflow_provider_fgs.emulator.server import DEFAULT_PROJECT_ID, DEFAULT_REGION

    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
        {
            "conn_type": "functiongraph",
            "login": "DEMOACCESSKEY",
            "password": "demo-secret-key",
            "extra": {"region": DEFAULT_REGION, "project_id": DEFAULT_PROJECT_ID, "endpoint": url},
        }
    )


async def run_concurrently(count: int, seconds: float) -> tuple[float, int]:
    from airflow_provider_fgs.protocol.invocation import Invocation
    from airflow_provider_fgs.triggers.functiongraph import FunctionGraphInvokeTrigger

    async def one(n: int) -> bool:
        invocation = Invocation(function_name="sleeper", payload={"seconds": seconds, "n": n}, log_type=None)
        trigger = FunctionGraphInvokeTrigger(functiongraph_conn_id=CONN_ID, invocation=invocation.to_dict())
        async for event in trigger.run():
            return bool(
                event.payload["status"] == "success" and not event.payload["result"]["is_function_error"]
            )
        return False

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(n) for n in range(count)))
    return time.perf_counter() - started, sum(outcomes)


def run_serially(count: int, seconds: float) -> float:
    from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook

    with FunctionGraphHook(CONN_ID) as hook:
        started = time.perf_counter()
        for n in range(count):
            result = hook.invoke("sleeper", {"seconds": seconds, "n": n}, log_type=None)
            assert not result.is_function_error, result.raw_result
        return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invocations", type=int, default=200)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--serial-sample", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as functions:
        (Path(functions) / "sleeper.py").write_text(HANDLER)
        (Path(functions) / "sleeper.json").write_text(json.dumps({"timeout": 30}))
        with emulator_process(Path(functions), max_workers=max(args.invocations, 16)) as (_, url):
            configure_connection(url)
            run_serially(1, 0.0)  # warm up: imports, first connection, first worker
            per_call = run_serially(args.serial_sample, args.sleep)
            tracemalloc.start()
            wall, succeeded = asyncio.run(run_concurrently(args.invocations, args.sleep))
            _, peak_traced = tracemalloc.get_traced_memory()
            tracemalloc.stop()

    serial_estimate = per_call * args.invocations
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"invocations                     {args.invocations} x sleep {args.sleep:g} s ({succeeded} succeeded)"
    )
    print(f"concurrent, one event loop      {wall:8.2f} s wall")
    sample = f"serial (sample of {args.serial_sample}, scaled)"
    print(f"{sample:<32}{serial_estimate:8.2f} s ({per_call:.3f} s per call)")
    print(f"speed-up serial / concurrent    {serial_estimate / wall:8.1f}x")
    print(f"peak Python heap (tracemalloc)  {peak_traced / 2**20:8.1f} MB during the concurrent run")
    print(f"peak RSS of the client process  {peak_rss_mb:8.1f} MB")
    verdict = "met" if wall < TARGET_SECONDS and succeeded == args.invocations else "NOT met"
    print(f"target: {args.invocations} concurrent under {TARGET_SECONDS:g} s wall -> {verdict}")


if __name__ == "__main__":
    main()
