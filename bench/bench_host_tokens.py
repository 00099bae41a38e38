"""
IAM token requests per task processes on one host, with the provider's host cache and without it.

Airflow runs each task in its own process, so an in-process token cache fetches one token per task.
This starts ``--processes`` fresh Python interpreters at once (as task runners are), each invoking a
function once through ``FunctionGraphHook`` with IAM password auth, twice side by side: with the host
cache (target: 1 token request in all) and with it turned off (``host_cache: false``, one per process).
The emulator runs as its own process and counts the token requests (``/_emulator/stats``).

Run: ``python bench/bench_host_tokens.py [--processes N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from _emulator import emulator_process

from airflow_provider_fgs.emulator.app import STATS_PATH
from airflow_provider_fgs.emulator.defaults import DEFAULT_PROJECT_ID, DEFAULT_REGION

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "example_dags" / "functions"
TASK = (
    "from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook\n"
    "FunctionGraphHook('bench_fan_out').invoke('hello', {'name': 'bench'})\n"
)


def _connection(url: str, *, host_cache: bool) -> str:
    return json.dumps(
        {
            "conn_type": "functiongraph",
            "login": "demo-user",
            "password": "demo-password",
            "extra": {
                "region": DEFAULT_REGION,
                "project_id": DEFAULT_PROJECT_ID,
                "domain_name": "demo-domain",
                "endpoint": url,
                "iam_endpoint": url,
                "host_cache": host_cache,
            },
        }
    )


def _token_requests(url: str) -> int:
    stats = requests.get(f"{url}{STATS_PATH}", timeout=10).json()
    return int(stats["requests"].get("token", 0))


def run_tasks(url: str, processes: int, *, host_cache: bool, cache_dir: str) -> tuple[int, float]:
    """Start ``processes`` task-like interpreters at once; (token requests they made, wall seconds)."""
    env = {
        **os.environ,
        "AIRFLOW_CONN_BENCH_FAN_OUT": _connection(url, host_cache=host_cache),
        "AIRFLOW__FUNCTIONGRAPH__HOST_CACHE_DIR": cache_dir,
    }
    before = _token_requests(url)
    started = time.perf_counter()
    children = [subprocess.Popen([sys.executable, "-c", TASK], env=env) for _ in range(processes)]
    failed = [child.args for child in children if child.wait(timeout=300) != 0]
    wall = time.perf_counter() - started
    if failed:
        raise SystemExit(f"{len(failed)} task processes failed")
    return _token_requests(url) - before, wall


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, default=16, help="task processes at once (default 16)")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="fgs-bench-host-cache-") as cache_dir,
        emulator_process(FUNCTIONS) as (_, url),
    ):
        shared, shared_wall = run_tasks(url, args.processes, host_cache=True, cache_dir=cache_dir)
        alone, alone_wall = run_tasks(url, args.processes, host_cache=False, cache_dir=cache_dir)
    print(f"Task processes at once: {args.processes}")
    print(f"  IAM token requests with the host cache:    {shared} (target 1), wall {shared_wall:.1f} s")
    print(f"  IAM token requests without the host cache: {alone}, wall {alone_wall:.1f} s")
    print(f"  token requests saved: {alone - shared} of {alone}")
    return 0 if shared <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
