"""
Benchmark of FunctionGraphHook against the local emulator, measured side by side in one run.

1. Per-invocation time of ``hook.invoke`` versus a bare ``requests.Session().post`` of the same
   pre-built request to the same function, at concurrency 1 (target: ratio within 1.10x). The emulator
   runs in its own process, so the client's CPU time per call is measured apart from the server's; the
   wall-time ratio is the median of rounds in which both clients ran back to back (the order alternating),
   which keeps the emulator's own jitter out of the ratio.
2. IAM token requests per 1000 invocations through fresh hooks of one connection (target: 1).
3. Import time of ``airflow_provider_fgs.hooks.functiongraph`` on top of ``import airflow.sdk``
   (target: under 30 ms added).

Run: ``python bench/bench_hook.py [--calls N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _emulator import emulator_process

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "example_dags" / "functions"
FUNCTION = "hello"
PAYLOAD = {"name": "bench"}


def _connection_env(emu_url: str, region: str, project_id: str) -> str:
    return json.dumps(
        {
            "conn_type": "functiongraph",
            "login": "demo-user",
            "password": "demo-password",
            "extra": {
                "region": region,
                "project_id": project_id,
                "domain_name": "demo-domain",
                "endpoint": emu_url,
                "iam_endpoint": emu_url,
            },
        }
    )


@dataclass(frozen=True)
class InvokeTimes:
    """Per-call medians of one client: wall seconds and client CPU seconds."""

    wall: float
    cpu: float


def bench_invoke(calls: int, rounds: int) -> tuple[InvokeTimes, InvokeTimes, float]:
    """(hook.invoke, bare session.post) per-call medians, and the median of the paired wall ratios."""
    import requests

    from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
    from airflow_provider_fgs.protocol.invoke import build_invoke_request

    hook = FunctionGraphHook("fgs_bench")
    urn = hook.resolve_urn(FUNCTION)
    token = hook._tokens.token()
    request = build_invoke_request(hook.settings.endpoint, urn, PAYLOAD)
    headers = {**request.headers, "X-Auth-Token": token}
    session = requests.Session()

    def bare() -> None:
        response = session.post(request.url, data=request.body, headers=headers, timeout=(10, 120))
        response.raise_for_status()
        response.json()

    def via_hook() -> None:
        if hook.invoke(urn, PAYLOAD).is_function_error:
            raise RuntimeError("the bench function failed")

    def timed(fn: Callable[[], None]) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls

    for _ in range(20):  # warm both connection pools and the emulator's workers
        bare()
        via_hook()
    hook_samples: list[tuple[float, float]] = []
    bare_samples: list[tuple[float, float]] = []
    for round_number in range(rounds):
        if round_number % 2:
            bare_samples.append(timed(bare))
            hook_samples.append(timed(via_hook))
        else:
            hook_samples.append(timed(via_hook))
            bare_samples.append(timed(bare))
    paired = statistics.median(h[0] / b[0] for h, b in zip(hook_samples, bare_samples, strict=True))

    def medians(samples: list[tuple[float, float]]) -> InvokeTimes:
        return InvokeTimes(
            wall=statistics.median(w for w, _ in samples), cpu=statistics.median(c for _, c in samples)
        )

    return medians(hook_samples), medians(bare_samples), paired


def bench_token_requests(emu: object, invocations: int) -> int:
    """IAM token requests made by ``invocations`` calls through fresh hooks (10 calls per hook)."""
    from airflow_provider_fgs.client.tokens import TOKEN_CACHE
    from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook

    TOKEN_CACHE.clear()
    before = emu.request_count("token")  # type: ignore[attr-defined]
    hook = None
    for index in range(invocations):
        if index % 10 == 0:
            if hook is not None:
                hook.close()
            hook = FunctionGraphHook("fgs_bench")
        assert hook is not None
        hook.invoke(FUNCTION, PAYLOAD)
    return int(emu.request_count("token")) - before  # type: ignore[attr-defined]


_IMPORT_PROBE = """
import time
import airflow.sdk
from airflow.sdk import BaseHook
wall, cpu = time.perf_counter(), time.process_time()
import airflow_provider_fgs.hooks.functiongraph
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def bench_import(repeats: int) -> tuple[float, float]:
    """
    Median (wall, CPU) seconds that importing the hook module adds after ``import airflow.sdk``.

    Each sample is a fresh interpreter. Byte code is cached (in a temporary ``PYTHONPYCACHEPREFIX``,
    warmed by one unmeasured run) as in any installed environment, even when the caller disabled it.
    """
    env = {
        **os.environ,
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="fgs-bench-home-"),
        "PYTHONPYCACHEPREFIX": tempfile.mkdtemp(prefix="fgs-bench-pycache-"),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    walls, cpus = [], []
    for index in range(repeats + 1):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, check=True, env=env
        )
        if index:  # the first run only writes the byte code cache
            wall, cpu = (float(value) for value in out.stdout.strip().splitlines()[-1].split())
            walls.append(wall)
            cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200, help="calls per round and client")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--invocations", type=int, default=1000, help="invocations for the token count")
    parser.add_argument("--import-repeats", type=int, default=7)
    args = parser.parse_args()

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="fgs-bench-home-"))
    from airflow_provider_fgs.emulator import FunctionGraphEmulator
    from airflow_provider_fgs.emulator.defaults import DEFAULT_PROJECT_ID, DEFAULT_REGION

    with emulator_process(FUNCTIONS) as (_, url):
        os.environ["AIRFLOW_CONN_FGS_BENCH"] = _connection_env(url, DEFAULT_REGION, DEFAULT_PROJECT_ID)
        hook_t, bare_t, ratio = bench_invoke(args.calls, args.rounds)
    with FunctionGraphEmulator(FUNCTIONS) as emu:  # in process: its token counter is read directly
        os.environ["AIRFLOW_CONN_FGS_BENCH"] = _connection_env(emu.url, emu.region, emu.project_id)
        tokens = bench_token_requests(emu, args.invocations)
    added_import, added_import_cpu = bench_import(args.import_repeats)

    print(f"{'measure':<46} {'value':>12}  target")
    print(f"{'bare requests.Session().post per call (wall)':<46} {bare_t.wall * 1e3:>9.3f} ms")
    print(f"{'hook.invoke per call (wall)':<46} {hook_t.wall * 1e3:>9.3f} ms")
    print(f"{'hook.invoke / bare post (concurrency 1)':<46} {ratio:>11.3f}x  <= 1.10x {_ok(ratio <= 1.10)}")
    print(f"{'client CPU per call: bare post':<46} {bare_t.cpu * 1e3:>9.3f} ms")
    print(f"{'client CPU per call: hook.invoke':<46} {hook_t.cpu * 1e3:>9.3f} ms")
    label = f"token requests per {args.invocations} invocations"
    print(f"{label:<46} {tokens:>12d}  == 1 {_ok(tokens == 1)}")
    print(
        f"{'hook module import after airflow.sdk (wall)':<46} {added_import * 1e3:>9.1f} ms  "
        f"< 30 ms {_ok(added_import < 0.030)}"
    )
    print(f"{'hook module import after airflow.sdk (CPU)':<46} {added_import_cpu * 1e3:>9.1f} ms")


def _ok(passed: bool) -> str:
    return "ok" if passed else "MISSED"


if __name__ == "__main__":
    main()
