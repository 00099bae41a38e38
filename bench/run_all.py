"""
Run every bench script, one after another, and print all their figures with the exact commands and the
machine's load average before and after each (the figures are ratios measured side by side in one run,
but absolute times move with the load).

Run: ``python bench/run_all.py [--quick]`` (``--quick``: smaller counts, for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS: dict[str, list[str]] = {
    "bench_hook.py": [],
    "bench_deferrable.py": [],
    "bench_emulator.py": [],
    "bench_host_tokens.py": [],
    "bench_fan_out.py": [],
    "bench_batch_client.py": [],
    "bench_batch.py": [],
    "bench_view.py": [],
}
QUICK: dict[str, list[str]] = {
    "bench_hook.py": ["--calls", "50", "--rounds", "3", "--invocations", "100", "--import-repeats", "3"],
    "bench_deferrable.py": ["--invocations", "50", "--serial-sample", "2"],
    "bench_emulator.py": ["--calls", "100", "--burst", "50"],
    "bench_host_tokens.py": ["--processes", "4"],
    "bench_fan_out.py": ["--tasks", "10", "--sleep", "1"],
    "bench_batch_client.py": ["--calls", "300", "--concurrency", "50", "--sleep", "0.2"],
    "bench_batch.py": ["--tasks", "10", "--batch-items", "500", "--batch-concurrency", "50"],
    "bench_view.py": ["--dags", "200", "--runs", "2", "--requests", "3", "--databases", "sqlite"],
}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller counts (a smoke run, not for the README)"
    )
    args = parser.parse_args()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load()}"
    )
    failed = 0
    for script, options in SCRIPTS.items():
        command = [sys.executable, str(BENCH / script), *(QUICK[script] if args.quick else options)]
        shown = " ".join(["python", f"bench/{script}", *command[2:]])
        print(f"\n$ {shown}    # load average before: {load()}", flush=True)
        began = time.perf_counter()
        completed = subprocess.run(command, check=False)
        took = time.perf_counter() - began
        print(f"# {script}: exit {completed.returncode}, {took:.0f} s, load average after: {load()}")
        failed += completed.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
