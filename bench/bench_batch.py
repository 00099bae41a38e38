"""
A batch against a mapped fan-out, in one real deployment (PostgreSQL, LocalExecutor, every Airflow
component its own process): ``bench_fan_out.py``'s harness with its ``plain`` and ``batch`` modes.

Defaults are issue #28's goal: 100 mapped plain tasks of a 1 s function, then ONE deferrable batch
task of 10,000 items of the same function at 100 in flight, side by side: wall against the ideal,
Airflow's CPU per invocation (every Airflow process and PostgreSQL, the emulator apart), worker
processes started, Execution API requests per invocation, the handler's own count of its runs, and the
trigger runner's memory growth. ``--batch-files --batch-items 100000`` runs the large batch from a
JSON Lines file with its results written to another (the memory bound).

Run: ``python bench/bench_batch.py [--tasks 100] [--batch-items 10000] [--batch-concurrency 100]
[--sleep 1] [--batch-files] [--modes plain,batch] [other bench_fan_out.py options]``
"""

from __future__ import annotations

import sys

import bench_fan_out

DEFAULTS = ["--modes", "plain,batch", "--sleep", "1", "--tasks", "100"]

if __name__ == "__main__":
    given = sys.argv[1:]
    named = {argument.split("=")[0] for argument in given if argument.startswith("--")}
    defaults: list[str] = []
    for flag, value in zip(DEFAULTS[::2], DEFAULTS[1::2], strict=True):
        if flag not in named:
            defaults += [flag, value]
    sys.argv = [sys.argv[0], *defaults, *given]
    sys.exit(bench_fan_out.main())
