"""
Fan-out in a real, production-shaped Airflow: N mapped ``InvokeFunctionOperator`` tasks, each invoking a
function that sleeps S seconds, run once per MODE (one DAG each) in the same deployment, side by side.

Modes: ``plain`` (the task process waits for the call), ``deferrable`` (``deferrable=True``: the call
waits in the triggerer), ``start_from_trigger`` (``deferrable=True, start_from_trigger=True``: the
scheduler hands the task straight to the triggerer, no worker at all), and ``batch``: ONE
``InvokeFunctionBatchOperator`` task (deferrable: one trigger) invoking the function for
``--batch-items`` payloads at ``--batch-concurrency`` in flight, its payloads the result of an upstream
task (or, with ``--batch-files``, a JSON Lines file, its results written to another). Figures are per
invocation: a task each in the mapped modes, an item each in the batch. Each mode's DAG is its own file,
written from one template: a mode whose DAG does not import (the operator refusing an argument, say) is
reported as skipped with the import error the REST API gives (``/importErrors``), and the others run.

The deployment (started and stopped here; loopback, free ports, one temp dir): PostgreSQL as the
metadata database, LocalExecutor, and api-server, scheduler, dag-processor and triggerer as separate
``airflow`` processes (``tests/integration``'s AirflowDeployment and PostgresServer), plus
``fgs-emulator`` running the handler, which appends one line per run to a count file. Every mode first
runs a small warm-up DAG, unmeasured (the api-server loads its Execution API routes on the first task
request: seconds of CPU that would otherwise land on the first mode only), and the DAG files are not
re-parsed on a timer (they do not change).

Per mode, over the window from the trigger call until the run has ended and the deployment is quiet
again (no busy LocalExecutor worker, no task process, trigger row, active task instance or DAG callback
left, no dag-processor child):

1. wall time from the trigger call to the run's ``end_date``, and the task states;
2. CPU seconds of every Airflow process tree and PostgreSQL (and, apart, the emulator's), from
   ``/proc``: own plus waited-for children's times, end minus start, so task processes that came and
   went are counted through the parents that reaped them (``bench/_deployment.py`` says how, and each
   mode prints a check of that roll-up against a 0.5 s sampler of the trees);
3. worker processes started: ``PATCH /execution/task-instances/{id}/run`` lines (answered 2xx) in the
   api-server's access log, one per task process starting or resuming, per task instance;
4. Execution API requests per invocation, by route (ids collapsed; XComs by key); the triggerer calls
   the Execution API in process, so its calls are not among them;
5. handler runs, from the handler's own count file (must equal N);
6. ERROR and WARNING lines of each component's log and of every log file under AIRFLOW_HOME/logs (task
   logs, ``*.trigger.*.log``, the dag-processor's per-file logs): counts and the distinct messages.

Before the first mode it measures the idle deployment's CPU per second (the background included in
every window). Then a table compares the modes with ``plain`` and states the issue's goals. Linux only.

Run: ``python bench/bench_fan_out.py [--tasks 100] [--sleep 5] [--modes plain,deferrable,start_from_trigger]
[--batch-items 10000] [--batch-concurrency 100] [--batch-files] [--parallelism 32] [--warmup 2] [--idle 5]
[--gap 5] [--provider GIT_REF] [--verbose] [--keep]``; ``bench/bench_batch.py`` runs plain and batch.
Targets (issues #21, #28): start_from_trigger at most 0.35x the plain path's CPU per task and zero worker
processes; deferrable at most 1.1x the plain path's CPU per task; batch at most 10 ms of Airflow CPU per
invocation and 0.01x the plain path's, its wall at most 1.25x the ideal (items / concurrency x sleep), the
trigger runner's memory grown by less than 100 MB.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import requests
from _deployment import (
    AIRFLOW_COMPONENTS,
    ALL_COMPONENTS,
    TASK_TITLE,
    TRIGGERER_REQUEST,
    DeploymentError,
    FanOutStack,
    LogMarks,
    Sampler,
    Snapshot,
    WindowCpu,
    problems,
    window_cpu,
)

T = TypeVar("T")
MODES: dict[str, str] = {
    "plain": "",
    "deferrable": "deferrable=True, ",
    "start_from_trigger": "deferrable=True, start_from_trigger=True, ",
    "batch": "",  # its own template, below
}
FUNCTION = "fan_out_sleep"
HANDLER = '''"""Written by bench/bench_fan_out.py: counts its own runs (one line each), then sleeps."""

import os
import time


def handler(event, context):
    with open(event["count_file"], "a", encoding="utf-8") as runs:
        runs.write(f"{event.get('mode')} {event.get('n')} {os.getpid()} {time.time():.3f}\\n")
    time.sleep(float(event.get("seconds", 1)))
    return {"slept": float(event.get("seconds", 1)), "n": event.get("n"), "mode": event.get("mode")}
'''
DAG_TEMPLATE = '''"""Written by bench/bench_fan_out.py: the {mode!r} mode, and its warm-up."""

from airflow.sdk import DAG

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

for dag_id, tasks, seconds, count_file in [
    ({dag_id!r}, {tasks}, {sleep!r}, {count_file!r}),
    ({dag_id!r} + "_warmup", {warmup}, 0.0, {warmup_count_file!r}),
]:
    with DAG(
        dag_id=dag_id,
        schedule=None,
        max_active_runs=1,
        # Counts queued and running task instances only (deferred ones hold no slot: Airflow 3.3's
        # ConcurrencyMap), so at the executor's parallelism or above it throttles nothing.
        max_active_tasks={max_active_tasks},
        tags=["bench"],
    ):
        InvokeFunctionOperator.partial(
            task_id="invoke", function_name={function!r}, log_type="tail", {options}
        ).expand(
            payload=[
                {{"seconds": seconds, "n": n, "mode": {mode!r}, "count_file": count_file}}
                for n in range(tasks)
            ]
        )
'''
BATCH_TEMPLATE = '''"""Written by bench/bench_fan_out.py: the 'batch' mode, and its warm-up."""

from airflow.sdk import DAG, task

from airflow_provider_fgs.operators.batch import InvokeFunctionBatchOperator
from airflow_provider_fgs.protocol.invocation import Invocation

for dag_id, items, seconds, count_file, payloads_path, results_path in [
    ({dag_id!r}, {items}, {sleep!r}, {count_file!r}, {payloads_path!r}, {results_path!r}),
    ({dag_id!r} + "_warmup", {warmup}, 0.0, {warmup_count_file!r}, None, None),
]:
    with DAG(dag_id=dag_id, schedule=None, max_active_runs=1, tags=["bench"]):
        if payloads_path is None:

            @task(task_id="items")
            def items_of(items=items, seconds=seconds, count_file=count_file):
                return [
                    {{"seconds": seconds, "n": n, "mode": "batch", "count_file": count_file}}
                    for n in range(items)
                ]

            given = {{"payloads": items_of()}}
        else:
            given = {{"payloads_path": payloads_path, "results_path": results_path}}
        InvokeFunctionBatchOperator(
            task_id="invoke",
            invocation=Invocation(function_name={function!r}, log_type=None),
            max_concurrency={concurrency},
            deferrable=True,
            **given,
        )
'''
POLL_S = 5.0
"""Seconds between two polls of a measured run's state (each is an api-server request in the figures)."""
TARGET_SFT = 0.35  # start_from_trigger CPU per task, x plain
TARGET_DEFERRABLE = 1.10  # deferrable CPU per task, x plain
TARGET_BATCH_MS = 10.0  # batch: Airflow CPU per invocation
TARGET_BATCH_X = 0.01  # batch: CPU per invocation, x plain
TARGET_BATCH_WALL = 1.25  # batch: wall, x the ideal
TARGET_BATCH_RSS_MB = 100.0  # batch: the trigger runner's growth
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ACCESS = re.compile(r"\[http\.access\].*?\bmethod=(\S+) path=(\S+).*?\bstatus_code=(\d+)")
TASK_ECHO = re.compile(r"^\d{4}-\d\d-\d\d \d\d:")
"""A task process's log line echoed into the scheduler's log by its LocalExecutor worker (the
component's own lines start ``2026-01-01T...Z``); counted in the task logs, not again there."""
RUN_PATH = re.compile(r"^/execution/task-instances/([0-9a-f-]{36})/run$")


def dag_id(mode: str) -> str:
    return f"fan_out_{mode}"


def invocations(mode: str, args: argparse.Namespace) -> int:
    """The mode's invocations: a task each, or the batch's items."""
    return int(args.batch_items) if mode == "batch" else int(args.tasks)


def task_count(mode: str, args: argparse.Namespace) -> int:
    """The mode's task instances: the mapped ones, or the batch and (without files) its payloads' task."""
    return (1 if args.batch_files else 2) if mode == "batch" else int(args.tasks)


def ideal_seconds(mode: str, args: argparse.Namespace) -> float:
    """The shortest wall the invocations allow: all at once, or the batch's waves of its concurrency."""
    if mode == "batch":
        return math.ceil(args.batch_items / args.batch_concurrency) * args.sleep
    return args.sleep


@dataclass
class ModeResult:
    mode: str
    skipped: str = ""
    wall: float = 0.0
    run_state: str = ""
    states: Counter[str] = field(default_factory=Counter)
    window: float = 0.0
    cpu: dict[str, WindowCpu] = field(default_factory=dict)
    workers: int = 0
    execution_requests: int = 0
    handler_runs: int = 0
    invocations: int = 0
    trigger_rss_growth_mb: float = 0.0
    worker_cpu: float = 0.0  # the scheduler's LocalExecutor workers and their task processes

    @property
    def airflow_cpu(self) -> float:
        return sum(self.cpu[name].seconds for name in AIRFLOW_COMPONENTS)


# -- setup -----------------------------------------------------------------------------------------


def airflow_env(args: argparse.Namespace) -> dict[str, str]:
    limit = str(max(args.tasks, args.parallelism, 16))
    return {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # LocalExecutor's worker processes: it forks [core] parallelism of them (its parallelism)
        "AIRFLOW__CORE__PARALLELISM": str(args.parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": limit,
        "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, args.tasks)),
        # default_pool's size, read when `db migrate` creates it: running tasks take a slot each
        # (deferred ones do not: include_deferred is off), 128 would cap parallelism above it
        "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": str(max(128, args.parallelism)),
        "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, args.tasks)),
        # the DAG files never change: no re-parse (about 0.7 CPU s a file) landing in some windows only
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
    }


def dag_files(args: argparse.Namespace, counts: Path) -> dict[str, str]:
    """One file per mode from one template: a mode that fails to import takes no other mode with it."""
    files = {
        f"{dag_id(mode)}.py": DAG_TEMPLATE.format(
            mode=mode,
            dag_id=dag_id(mode),
            tasks=args.tasks,
            sleep=args.sleep,
            options=MODES[mode],
            function=FUNCTION,
            count_file=str(counts / f"{mode}.txt"),
            warmup=max(args.warmup, 1),
            warmup_count_file=str(counts / f"{mode}-warmup.txt"),
            max_active_tasks=max(args.tasks, args.parallelism),
        )
        for mode in args.modes
        if mode != "batch"
    }
    if "batch" in args.modes:
        payloads_path = results_path = None
        if args.batch_files:
            payloads_path, results_path = (
                str(counts / "batch-payloads.jsonl"),
                str(counts / "batch-results.jsonl"),
            )
            with open(payloads_path, "w", encoding="utf-8") as payloads:
                for n in range(args.batch_items):
                    item = {
                        "seconds": args.sleep,
                        "n": n,
                        "mode": "batch",
                        "count_file": str(counts / "batch.txt"),
                    }
                    payloads.write(json.dumps(item) + "\n")
        files[f"{dag_id('batch')}.py"] = BATCH_TEMPLATE.format(
            dag_id=dag_id("batch"),
            items=args.batch_items,
            sleep=args.sleep,
            count_file=str(counts / "batch.txt"),
            payloads_path=payloads_path,
            results_path=results_path,
            warmup=max(args.warmup, 1),
            warmup_count_file=str(counts / "batch-warmup.txt"),
            function=FUNCTION,
            concurrency=args.batch_concurrency,
        )
    return files


def raise_fd_limit(needed: int) -> None:
    """The emulator holds two sockets per running invocation; children inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < needed:
            print(f"note: open files limited to {new} (hard limit); {needed} wanted")


# -- the REST API, patient ---------------------------------------------------------------------------

API_TIMEOUT = 120.0
"""Seconds one REST call may take: the one api-server worker loads the Execution API's routes on its
first task request, blocking its event loop for many seconds on a loaded 2-core machine."""


def patiently(stack: FanOutStack, what: str, call: Callable[[], T], timeout: float = 300.0) -> T:
    """``call()``, again after a transport error or timeout, while every component is alive."""
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        try:
            return call()
        except requests.RequestException as exc:
            if time.monotonic() > deadline:
                raise DeploymentError(f"{what}: no answer within {timeout:.0f}s ({exc!r})") from exc
            time.sleep(1)


def trigger(stack: FanOutStack, dag: str) -> str:
    """Trigger a run now; one patient call (a retried POST could start a second run)."""
    assert stack.api is not None
    body: dict[str, Any] = {"logical_date": None, "conf": {}}
    run = stack.api.request("POST", f"/dags/{dag}/dagRuns", 200, json=body, timeout=API_TIMEOUT)
    return str(run.json()["dag_run_id"])


def wait_for_run(stack: FanOutStack, dag: str, run_id: str, timeout: float) -> dict[str, Any]:
    """
    Poll the run until it ends; returns it. Every 5 s: each poll is an api-server request counted in
    the figures (the wall time is read from the run's own end date, not from when the poll saw it).
    """
    assert stack.api is not None
    api = stack.api
    path = f"/dags/{dag}/dagRuns/{quote(run_id)}"
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = patiently(
            stack, f"run {run_id}", lambda: api.request("GET", path, timeout=API_TIMEOUT).json()
        )
        if run["state"] in ("success", "failed"):
            return run
        if time.monotonic() > deadline:
            raise DeploymentError(f"run {run_id} of {dag} not finished after {timeout:.0f}s")
        time.sleep(POLL_S)


def wait_for_dags(stack: FanOutStack, modes: list[str], timeout: float = 180.0) -> dict[str, str]:
    """``{mode: ""}`` once parsed (then unpaused), or ``{mode: "DAG import error: ..."}``."""
    assert stack.api is not None
    api = stack.api
    outcome: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while len(outcome) < len(modes):
        stack.check_alive()
        errors = patiently(
            stack,
            "import errors",
            lambda: api.request("GET", "/importErrors", params={"limit": 100}, timeout=API_TIMEOUT).json(),
        )["import_errors"]
        for mode in modes:
            if mode in outcome:
                continue
            url = f"{api.base_url}/api/v2/dags/{dag_id(mode)}"
            found = patiently(stack, "DAG", partial(api.session.get, url, timeout=API_TIMEOUT))
            if found.status_code == 200:
                for dag in (dag_id(mode), dag_id(mode) + "_warmup"):
                    unpause = partial(
                        api.request, "PATCH", f"/dags/{dag}", json={"is_paused": False}, timeout=API_TIMEOUT
                    )
                    patiently(stack, "unpause", unpause)
                outcome[mode] = ""
                continue
            for error in errors:
                if Path(error["filename"]).name == f"{dag_id(mode)}.py":
                    lines = [line for line in error["stack_trace"].strip().splitlines() if line.strip()]
                    outcome[mode] = f"DAG import error: {lines[-1].strip() if lines else '?'}"
        if time.monotonic() > deadline:
            missing = [m for m in modes if m not in outcome]
            raise DeploymentError(f"DAGs of {missing} neither parsed nor failed within {timeout:.0f}s")
        if len(outcome) < len(modes):
            time.sleep(1)
    return outcome


# -- quiet ---------------------------------------------------------------------------------------------


def busy(stack: FanOutStack) -> list[str]:
    """What still runs: task processes, trigger rows, active task instances, DAG callbacks..."""
    stack.check_alive()
    roots = stack.roots()
    snap = Snapshot.take({name: roots[name] for name in ("scheduler", "dag-processor")})
    scheduler = snap.trees["scheduler"].values()
    workers = {p.pid for p in scheduler if p.title.startswith("airflow worker -- LocalExecutor")}
    found = {
        # a worker is titled "... LocalExecutor: <idle>" between workloads; its children are task processes
        "busy LocalExecutor workers": sum(
            1 for p in scheduler if p.pid in workers and not p.title.endswith("<idle>")
        ),
        "task processes": sum(1 for p in scheduler if p.ppid in workers or TASK_TITLE.match(p.title)),
        # it forks one process per file to parse or per callback to run; none when idle
        "dag-processor children": len(snap.trees["dag-processor"]) - 1,
        "triggers": stack.query("SELECT count(*) FROM trigger")[0][0],
        "active task instances": stack.query(
            "SELECT count(*) FROM task_instance WHERE state IN ('scheduled', 'queued', 'running', 'deferred')"
        )[0][0],
        # e.g. the task callbacks the scheduler sends the dag-processor when a task ends in the triggerer
        "callbacks": stack.query("SELECT count(*) FROM callback")[0][0],
    }
    return [f"{count} {what}" for what, count in found.items() if count]


def settle(stack: FanOutStack, timeout: float = 120.0) -> float:
    """Wait until nothing runs (see :func:`busy`); returns the seconds waited."""
    began = time.monotonic()
    while left := busy(stack):
        if time.monotonic() - began > timeout:
            print(f"warning: the deployment did not settle within {timeout:.0f}s: {', '.join(left)} left")
            break
        time.sleep(1.0)
    return time.monotonic() - began


def warm_up(stack: FanOutStack, modes: list[str], tasks: int) -> None:
    """
    Run every mode's warm-up DAG (``tasks`` invocations of 0 s) once, all at once, unmeasured: the first
    Execution API request (the api-server loads its routes then: seconds of CPU), the triggerer's first
    trigger and the emulator's first workers are one-time costs that would land on the first mode only.
    """
    assert stack.api is not None
    began = time.monotonic()
    runs = {mode: trigger(stack, dag_id(mode) + "_warmup") for mode in modes}
    done = {}
    for mode, run_id in runs.items():
        done[mode] = wait_for_run(stack, dag_id(mode) + "_warmup", run_id, timeout=600)["state"]
    print(
        f"warm-up ({tasks} task(s) per mode, unmeasured): "
        + ", ".join(f"{mode} {state}" for mode, state in done.items())
        + f" in {time.monotonic() - began:.0f} s"
    )


def idle_cpu(stack: FanOutStack, seconds: float) -> dict[str, float]:
    """CPU seconds per second of each component while nothing runs."""
    roots = stack.roots()
    start = Snapshot.take(roots)
    time.sleep(seconds)
    end = Snapshot.take(roots)
    span = end.at - start.at
    return {name: window_cpu(start.trees[name], end.trees[name]).seconds / span for name in ALL_COMPONENTS}


# -- one mode ------------------------------------------------------------------------------------------


def route(method: str, path: str, dag_ids: set[str], run_ids: set[str]) -> str:
    """The route shape of one Execution API request: ids collapsed, an XCom's key kept."""
    parts = unquote(path).split("/")
    if len(parts) >= 7 and parts[2] == "xcoms":
        return f"{method} /execution/xcoms/{{dag}}/{{run}}/{{task}}/{'/'.join(parts[6:])}"
    shaped = []
    for index, part in enumerate(parts):
        if UUID.fullmatch(part):
            part = "{id}"
        elif part in dag_ids:
            part = "{dag}"
        elif part in run_ids or part.startswith("manual__"):
            part = "{run}"
        elif part == "invoke":
            part = "{task}"
        elif part.isdigit():
            part = "{n}"
        elif index == 3 and parts[2] in ("connections", "variables"):
            part = "{id}"
        shaped.append(part)
    return f"{method} {'/'.join(shaped)}"


def log_sources(stack: FanOutStack) -> dict[str, list[Path]]:
    """Each component's log, then every other log file under AIRFLOW_HOME/logs, by kind."""
    sources = {name: [process.log_path] for name, process in stack.processes().items()}
    taken = {path.resolve() for paths in sources.values() for path in paths}
    for kind in ("task logs", "trigger logs", "dag-processor file logs", "other logs"):
        sources[kind] = []
    for path in sorted(stack.logs_dir.rglob("*")):
        if not path.is_file() or path.resolve() in taken:  # dag_processor/latest is a symlink
            continue
        taken.add(path.resolve())
        top = path.relative_to(stack.logs_dir).parts[0]
        if top.startswith("dag_id="):
            kind = "trigger logs" if ".trigger." in path.name else "task logs"
        else:
            kind = "dag-processor file logs" if top == "dag_processor" else "other logs"
        sources[kind].append(path)
    return sources


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run_mode(stack: FanOutStack, mode: str, args: argparse.Namespace, idle: dict[str, float]) -> ModeResult:
    assert stack.api is not None
    api = stack.api
    result = ModeResult(mode)
    roots = stack.roots()
    marks = LogMarks(path for paths in log_sources(stack).values() for path in paths)
    load_before = load()
    sampler = Sampler(roots)
    sampler.start()
    start = Snapshot.take(roots)
    triggered_at = time.time()
    run_id = trigger(stack, dag_id(mode))
    timeout = 600 + 3 * math.ceil(args.tasks / args.parallelism) * (args.sleep + 10)
    if mode == "batch":
        timeout = 600 + 3 * ideal_seconds(mode, args)
    run = wait_for_run(stack, dag_id(mode), run_id, timeout)
    result.run_state = run["state"]
    result.wall = datetime.fromisoformat(run["end_date"]).timestamp() - triggered_at
    settled = settle(stack)
    end = Snapshot.take(roots)
    sampler.stop()
    result.invocations = invocations(mode, args)
    result.trigger_rss_growth_mb = sampler.rss_growth_mb("triggerer")
    result.window = end.at - start.at
    result.cpu = {name: window_cpu(start.trees[name], end.trees[name]) for name in ALL_COMPONENTS}
    workers_start, workers_end = (
        {k: p for k, p in snap.trees["scheduler"].items() if p.title.startswith("airflow worker -- ")}
        for snap in (start, end)
    )
    result.worker_cpu = round(window_cpu(workers_start, workers_end).seconds, 6) + 0.0  # no "-0.00"

    instances = patiently(stack, "task instances", lambda: api.task_instances(dag_id(mode), run_id))
    result.states = Counter(str(ti["state"]) for ti in instances)
    ti_ids = {ti["id"] for ti in instances}
    tries = Counter(int(ti["try_number"]) for ti in instances)

    # Execution API requests in the window, from the api-server's access log
    routes: Counter[str] = Counter()
    failures: dict[str, Counter[str]] = {}
    runs_per_ti: Counter[str] = Counter()
    refused_runs = 0
    for line in marks.since(stack.processes()["api-server"].log_path):
        match = ACCESS.search(line)
        if not match or not match.group(2).strip("'\"").startswith("/execution/"):
            continue
        method, path, status = match.group(1), match.group(2).strip("'\""), match.group(3)
        shape = route(method, path, {dag_id(m) for m in MODES}, {run_id})
        routes[shape] += 1
        if not status.startswith("2"):
            failures.setdefault(shape, Counter())[status] += 1
        found = RUN_PATH.match(path)
        if method == "PATCH" and found:
            if status.startswith("2"):
                runs_per_ti[found.group(1)] += 1
            else:
                refused_runs += 1
    # ... and the triggerer's, made in process (it logs each one: see _deployment.TRIGGERER_REQUEST)
    for line in marks.since(stack.processes()["triggerer"].log_path):
        match = TRIGGERER_REQUEST.search(line)
        if not match:
            continue
        method, url, status = match.groups()
        path = urlsplit(url).path
        path = path if path.startswith("/execution/") else "/execution" + path
        shape = "triggerer: " + route(method, path, {dag_id(m) for m in MODES}, {run_id})
        routes[shape] += 1
        if not status.startswith("2"):
            failures.setdefault(shape, Counter())[status] += 1
    result.workers = sum(runs_per_ti.values())
    result.execution_requests = sum(routes.values())

    # the handler's own count of its runs
    count_file = stack.counts / f"{mode}.txt"
    lines = count_file.read_text(encoding="utf-8").splitlines() if count_file.exists() else []
    ns = Counter(line.split()[1] for line in lines if len(line.split()) >= 2)
    result.handler_runs = len(lines)

    # -- print this mode's figures
    n = result.invocations
    shape = f"one batch task at {args.batch_concurrency} in flight" if mode == "batch" else "a task each"
    print(
        f"\n== {mode}: {n} x {FUNCTION} ({args.sleep:g} s), {shape}, parallelism {args.parallelism}; load"
        f" average {load_before} before, {load()} after =="
    )
    states = ", ".join(f"{state} {count}" for state, count in result.states.most_common())
    flag = (
        "" if result.states == Counter({"success": task_count(mode, args)}) else "   <-- NOT ALL SUCCESSFUL"
    )
    ideal = ideal_seconds(mode, args)
    print(
        f"run {result.run_state} in {result.wall:.1f} s wall (trigger call to the run's end_date;"
        f" ideal {ideal:.0f} s: {result.wall / ideal:.2f}x)"
    )
    print(f"trigger runner's memory: grew by {result.trigger_rss_growth_mb:.1f} MB RSS at its peak")
    print(f"tasks: {states}{flag}")
    print(
        f"CPU over {result.window:.1f} s (trigger call until quiet; {settled:.1f} s of it after the run's"
        " end, waiting for the last task process, trigger and DAG callback to go)"
    )
    for name in ALL_COMPONENTS:
        cpu = result.cpu[name]
        note = " (not in the Airflow total)" if name == "emulator" else ""
        print(
            f"  {name:<14}{cpu.seconds:8.2f} s {cpu.seconds / n * 1000:8.1f} ms/inv"
            f"   idle {idle[name] * result.window:6.2f} s{note}"
        )
        if name == "scheduler":
            print(
                f"    {'of which LocalExecutor workers + task processes':<48}{result.worker_cpu:8.2f} s"
                f" {result.worker_cpu / n * 1000:8.1f} ms/inv"
            )
    idle_airflow = sum(idle[name] for name in AIRFLOW_COMPONENTS) * result.window
    print(
        f"  {'Airflow total':<14}{result.airflow_cpu:8.2f} s {result.airflow_cpu / n * 1000:8.1f} ms/inv"
        f"   idle {idle_airflow:6.2f} s (the idle rate over the window: already in the total)"
    )
    per_ti = Counter(runs_per_ti.get(ti_id, 0) for ti_id in ti_ids)
    per_ti_text = ", ".join(f"{count} task(s) x {k}" for k, count in sorted(per_ti.items()))
    strays = sum(count for ti_id, count in runs_per_ti.items() if ti_id not in ti_ids)
    print(
        f"worker processes started (PATCH .../run answered 2xx): {result.workers} = {result.workers / n:.2f}"
        f" per task [per task instance: {per_ti_text}; try_number: "
        + ", ".join(f"{t}: {c}" for t, c in sorted(tries.items()))
        + (f"; {strays} for other task instances" if strays else "")
        + (f"; {refused_runs} more PATCH .../run refused (not 2xx)" if refused_runs else "")
        + "]"
    )
    print(
        f"  task processes seen by the 0.5 s sampler: {len(sampler.task_processes)}, "
        f"at most {sampler.peak_task_processes} at once"
    )
    print(
        f"Execution API requests: {result.execution_requests} = {result.execution_requests / n:.2f} per"
        " invocation (the api-server's access log, and the triggerer's in-process ones from its log)"
    )
    for shape, count in routes.most_common(12):
        failed = failures.get(shape)
        note = f"  ({', '.join(f'{c} x {code}' for code, c in failed.most_common())})" if failed else ""
        print(f"  {count:6d} {count / n:6.2f}/inv  {shape}{note}")
    if len(routes) > 12:
        rest = sum(count for _, count in routes.most_common()[12:])
        print(f"  {rest:6d} {rest / n:6.2f}/inv  ({len(routes) - 12} more route shapes)")
    handler_flag = ""
    if result.handler_runs != n or len(ns) != n:
        repeated = sorted((k for k, c in ns.items() if c > 1), key=int)[:10]
        handler_flag = f"   <-- MISMATCH: expected {n} runs of {n} distinct n; {len(ns)} distinct" + (
            f", run more than once: n={','.join(repeated)}" if repeated else ""
        )
    print(f"handler runs (its own count file): {result.handler_runs}{handler_flag}")

    messages: Counter[tuple[str, str, str]] = Counter()
    totals: dict[str, Counter[str]] = {}
    for source, paths in log_sources(stack).items():
        counted: Counter[tuple[str, str]] = Counter()
        for path in paths:
            lines = marks.since(path)
            if source == "scheduler":
                lines = [line for line in lines if not TASK_ECHO.match(line)]
            counted += problems(lines)
        totals[source] = Counter()
        for (level, message), count in counted.items():
            totals[source][level] += count
            messages[(source, level, message)] += count
    summary = ", ".join(
        f"{source} {sum(c.values())}" + (f" ({', '.join(f'{k} {v}' for k, v in c.items())})" if c else "")
        for source, c in totals.items()
        if c or source in ALL_COMPONENTS or source in ("task logs", "trigger logs")
    )
    print(f"ERROR/WARNING lines: {summary}")
    for (source, level, message), count in messages.most_common(10):
        print(f"  {count:5d} x {source} [{level}] {message}")
    if len(messages) > 10:
        print(f"  ... {len(messages) - 10} more distinct messages")

    print("CPU accounting check (processes that started and ended inside the window):")
    for name in ALL_COMPONENTS:
        cpu = result.cpu[name]
        short = sampler.short_lived(name, start, end)
        seen_cpu = sum(p.total for p in short)
        lost = f", {len(cpu.lost)} gone un-reaped (time not counted)" if cpu.lost else ""
        ignoring = [f"pid {p.pid} {p.title[:60]}" for p in end.trees[name].values() if p.ignores_sigchld]
        ignoring_note = (
            f"; ignores SIGCHLD, children's CPU dropped: {', '.join(ignoring)}" if ignoring else ""
        )
        verdict = "ok" if cpu.children_growth + 0.05 >= seen_cpu else "CHILDREN TIME MISSING"
        print(
            f"  {name:<14}sampled {len(short):4d} short-lived, {seen_cpu:7.2f} s last seen <= "
            f"{cpu.children_growth:7.2f} s reaped-children growth: {verdict}"
            f"; {len(cpu.born)} born, {len(cpu.reaped)} reaped since the start{lost}{ignoring_note}"
        )
        if args.verbose:
            for what, procs in (
                ("born", cpu.born),
                ("reaped", cpu.reaped),
                ("lost", cpu.lost),
                ("short", short),
            ):
                titles = Counter(UUID.sub("<id>", p.title)[:90] for p in procs)
                for title, count in titles.most_common(5):
                    print(f"      {what:<6} {count:4d} x {title}")
    return result


# -- report ------------------------------------------------------------------------------------------


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def comparison(results: list[ModeResult], args: argparse.Namespace) -> None:
    print(f"\n== comparison: invocations of {args.sleep:g} s, parallelism {args.parallelism} ==")
    header = (
        f"{'mode':<20}{'calls':>7}{'wall s':>8}{'x ideal':>9}{'CPU s':>9}{'CPU/inv ms':>12}{'x plain':>9}"
        f"{'workers':>9}{'exec API/inv':>14}{'handler':>9}{'emulator s':>12}"
    )
    print(header)
    base = next((r for r in results if r.mode == "plain" and not r.skipped), None)
    base_per_call = base.airflow_cpu / base.invocations if base else 0.0
    for r in results:
        if r.skipped:
            print(f"{r.mode:<20}skipped: {r.skipped}")
            continue
        n = r.invocations
        per_call = r.airflow_cpu / n
        print(
            f"{r.mode:<20}{n:>7}{r.wall:8.1f}{r.wall / ideal_seconds(r.mode, args):9.2f}{r.airflow_cpu:9.2f}"
            f"{per_call * 1000:12.2f}{ratio(per_call, base_per_call) if base else '-':>9}"
            f"{r.workers:>9}{r.execution_requests / n:14.3f}{r.handler_runs:>9}"
            f"{r.cpu['emulator'].seconds:12.2f}"
        )
    by_mode = {r.mode: r for r in results}

    def succeeded(r: ModeResult) -> bool:
        return r.states == Counter({"success": task_count(r.mode, args)}) and r.handler_runs == r.invocations

    def verdict(mode: str, limit: float, zero_workers: bool) -> str:
        r = by_mode.get(mode)
        if r is None or r.skipped or base is None:
            return "not measured" + (f" ({r.skipped})" if r is not None and r.skipped else "")
        value = (r.airflow_cpu / r.invocations) / base_per_call
        met = value <= limit and (r.workers == 0 or not zero_workers) and succeeded(r)
        workers = f", {r.workers} worker processes" if zero_workers else ""
        return f"{value:.2f}x{workers} -> {'met' if met else 'NOT met'}"

    print("targets (issues), CPU per invocation of Airflow + PostgreSQL against plain:")
    print(
        f"  start_from_trigger <= {TARGET_SFT:g}x and 0 worker processes: "
        f"{verdict('start_from_trigger', TARGET_SFT, True)}"
    )
    print(f"  deferrable <= {TARGET_DEFERRABLE:g}x: {verdict('deferrable', TARGET_DEFERRABLE, False)}")
    batch = by_mode.get("batch")
    if batch is not None and not batch.skipped:
        per_call_ms = batch.airflow_cpu / batch.invocations * 1000
        wall_x = batch.wall / ideal_seconds("batch", args)
        x_plain = per_call_ms / 1000 / base_per_call if base else float("nan")
        met = (
            per_call_ms <= TARGET_BATCH_MS
            and (base is None or x_plain <= TARGET_BATCH_X)
            and wall_x <= TARGET_BATCH_WALL
            and batch.trigger_rss_growth_mb < TARGET_BATCH_RSS_MB
            and succeeded(batch)
        )
        print(
            f"  batch <= {TARGET_BATCH_MS:g} ms and <= {TARGET_BATCH_X:g}x plain per invocation, wall <="
            f" {TARGET_BATCH_WALL:g}x ideal, trigger runner < {TARGET_BATCH_RSS_MB:g} MB more, items once:"
            f" {per_call_ms:.2f} ms, {x_plain:.4f}x, {wall_x:.2f}x, {batch.trigger_rss_growth_mb:.0f} MB,"
            f" {batch.handler_runs} handler runs of {batch.invocations} -> {'met' if met else 'NOT met'}"
        )


# -- main ------------------------------------------------------------------------------------------


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100, help="mapped tasks per mode, N (default 100)")
    parser.add_argument(
        "--sleep", type=float, default=5.0, help="seconds each invocation sleeps, S (default 5)"
    )
    parser.add_argument(
        "--modes",
        default="plain,deferrable,start_from_trigger",
        help=f"comma-separated, run in this order, of {', '.join(MODES)}",
    )
    parser.add_argument("--batch-items", type=int, default=10000, help="the batch mode's items (10000)")
    parser.add_argument("--batch-concurrency", type=int, default=100, help="its max_concurrency (100)")
    parser.add_argument(
        "--batch-files", action="store_true", help="its payloads from a JSON Lines file, results to another"
    )
    parser.add_argument("--parallelism", type=int, default=32, help="[core] parallelism (default 32)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="tasks per mode run first, unmeasured (0: none; default 2)"
    )
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measured first")
    parser.add_argument("--gap", type=float, default=5.0, help="idle seconds between two modes")
    parser.add_argument(
        "--provider",
        metavar="GIT_REF",
        help="run airflow_provider_fgs as committed at GIT_REF instead of the working tree",
    )
    parser.add_argument("--verbose", action="store_true", help="name the processes of the CPU check")
    parser.add_argument("--keep", action="store_true", help="leave the temp dir (logs) for inspection")
    args = parser.parse_args()
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown or not args.modes:
        parser.error(f"unknown mode(s) {unknown}; choose from {', '.join(MODES)}")
    if not 1 <= args.tasks <= 1000 or args.parallelism < 1 or args.sleep < 0:
        parser.error("--tasks 1..1000, --parallelism >= 1, --sleep >= 0")

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    raise_fd_limit(4 * max(args.tasks, args.batch_concurrency) + 1024)
    functions = {
        f"{FUNCTION}.py": HANDLER,
        # the function's timeout must exceed the sleep (the emulator's default is FunctionGraph's 3 s)
        f"{FUNCTION}.json": f'{{"timeout": {math.ceil(args.sleep) + 60}}}',
    }
    stack = FanOutStack(
        airflow_env=airflow_env(args),
        functions=functions,
        # every invocation at once: one emulator worker process each (the default cap is 256)
        max_workers=max(args.tasks, args.batch_concurrency, 16),
        gateway_timeout=max(90.0, args.sleep + 60),
        provider_ref=args.provider,
    )
    for name, text in dag_files(args, stack.counts).items():
        (stack.dags / name).write_text(text, encoding="utf-8")

    print(
        f"fan-out: {args.tasks} tasks x {args.sleep:g} s (batch: {args.batch_items} items at"
        f" {args.batch_concurrency} in flight), modes {', '.join(args.modes)}, parallelism "
        f"{args.parallelism}; PostgreSQL + LocalExecutor in {stack.workdir}\nprovider: {stack.provider}"
        f"\n{os.cpu_count()} CPUs, load average {load()}"
    )
    results: list[ModeResult] = []
    failed = False
    try:
        began = time.monotonic()
        stack.start()
        outcome = wait_for_dags(stack, args.modes)
        print(
            f"deployment up in {time.monotonic() - began:.0f} s"
            f" (api-server {stack.airflow.url}, emulator {stack.emulator_url})"
        )
        if args.warmup:
            warm_up(stack, [mode for mode in args.modes if not outcome[mode]], args.warmup)
        settle(stack)
        time.sleep(3)
        idle = idle_cpu(stack, args.idle)
        print(
            f"idle CPU over {args.idle:g} s, per second: "
            + ", ".join(f"{k} {v:.3f}" for k, v in idle.items())
        )
        print(f"  Airflow + PostgreSQL idle: {sum(idle[k] for k in AIRFLOW_COMPONENTS):.3f} CPU s per second")
        for index, mode in enumerate(args.modes):
            if outcome[mode]:
                print(f"\n== {mode}: skipped: {outcome[mode]} ==")
                results.append(ModeResult(mode, skipped=outcome[mode]))
                continue
            if index:
                settle(stack)
                time.sleep(args.gap)
            results.append(run_mode(stack, mode, args, idle))
        comparison(results, args)
    except (Exception, KeyboardInterrupt) as exc:
        failed = True
        print(f"\nFAILED: {exc!r}", file=sys.stderr)
        if not isinstance(exc, KeyboardInterrupt):
            traceback.print_exc()
            print(stack.logs(), file=sys.stderr)
    finally:
        stack.stop(keep=args.keep)
        if args.keep:
            print(f"kept {stack.workdir} (logs in {stack.logs_dir})")
    if not failed:
        bad = [
            r.mode
            for r in results
            if not r.skipped
            and (
                r.states != Counter({"success": task_count(r.mode, args)}) or r.handler_runs != r.invocations
            )
        ]
        if bad:
            print(
                f"MISMATCH in {', '.join(bad)}: not every task succeeded or the handler did not run N times"
            )
            return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
