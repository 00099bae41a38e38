"""
Shared by ``bench_fan_out.py``: a production-shaped Airflow deployment with the emulator, the CPU
accounting of its process trees from ``/proc``, and readers of its logs.

The deployment reuses the integration harness (``tests/integration``): :class:`PostgresServer` for the
metadata database and :class:`AirflowDeployment` (LocalExecutor; api-server, scheduler, dag-processor and
triggerer as separate ``airflow`` processes) pointed at it through ``extra_env``, as
``tests/integration/production.py`` does for its Celery shape. Everything runs on loopback and free
ports in one temporary directory.

CPU accounting (Linux only): a process's CPU is ``utime + stime`` (its own) plus ``cutime + cstime``
(every child it has waited for, with their own waited-for children, recursively). Over a window:

    CPU = sum(total at the end, processes alive at the end) - sum(total at the start, processes alive
          at the start whose time is still in the end sum)

A process born inside the window and alive at the end counts whole; one born and reaped inside it is in
its parent's ``cutime``/``cstime``; one alive at the start and reaped inside it is in its parent's too,
with its pre-window part subtracted through its start figure. What escapes: a process whose parent
ignores SIGCHLD (the kernel reaps it, its times are dropped) or that was reparented outside the tree;
:func:`window_cpu` reports those as ``lost``, and :class:`Sampler` sees the short-lived processes so the
roll-up can be checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the integration harness lives in tests/integration
    sys.path.insert(0, str(ROOT))

from airflow_provider_fgs.emulator.defaults import (  # noqa: E402
    DEFAULT_ACCESS_KEYS,
    DEFAULT_PROJECT_ID,
    DEFAULT_REGION,
)
from tests.integration.airflow_api import AirflowApi  # noqa: E402
from tests.integration.deployment import ADMIN_USER, AirflowDeployment  # noqa: E402
from tests.integration.processes import (  # noqa: E402
    DeploymentError,
    ManagedProcess,
    describe_logs,
    tail,
    wait_for,
)
from tests.integration.services import PostgresServer  # noqa: E402

CONN_ID = "functiongraph_default"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "postgres")
"""The process trees whose CPU is "Airflow's" (PostgreSQL included: it is the metadata database)."""
ALL_COMPONENTS = (*AIRFLOW_COMPONENTS, "emulator")

__all__ = [
    "ADMIN_USER",
    "AIRFLOW_COMPONENTS",
    "ALL_COMPONENTS",
    "TRIGGERER_REQUEST",
    "DeploymentError",
    "FanOutStack",
    "LogMarks",
    "Sampler",
    "Snapshot",
    "window_cpu",
]


# -- the deployment --------------------------------------------------------------------------------


TRIGGERER_REQUEST = re.compile(r"fgs-bench-request (\S+) (\S+) (\S+)")
"""A request of the triggerer to its in-process Execution API, as the counter below writes it."""
_COUNTER = """# Written by bench/_deployment.py: count the triggerer's in-process Execution API requests.
import sys

import httpx

_send = httpx.Client.send


def _counted(self, request, *args, **kwargs):
    try:
        response = _send(self, request, *args, **kwargs)
    except Exception as error:  # the client raises on 4xx/5xx answers from a response hook
        status = getattr(getattr(error, "response", None), "status_code", "error")
        sys.stderr.write(f"fgs-bench-request {request.method} {request.url.path} {status}\\n")
        raise
    sys.stderr.write(f"fgs-bench-request {request.method} {request.url.path} {response.status_code}\\n")
    return response


httpx.Client.send = _counted
"""


class _RequestCountingTriggerer(AirflowDeployment):
    """
    The harness's deployment, whose triggerer writes a line per Execution API request: it makes them in
    process (``InProcessExecutionAPI``, a sync httpx client), so they are not in the api-server's access
    log. A ``sitecustomize`` on the triggerer's ``PYTHONPATH`` wraps ``httpx.Client.send`` there.
    """

    def components(self) -> list[tuple[str, list[str], dict[str, str]]]:
        counter = self.home / "request-counter"
        counter.mkdir(exist_ok=True)
        (counter / "sitecustomize.py").write_text(_COUNTER, encoding="utf-8")
        path = os.pathsep.join(filter(None, [str(counter), self.env.get("PYTHONPATH", "")]))
        return [
            (name, args, {**env, "PYTHONPATH": path} if name == "triggerer" else env)
            for name, args, env in super().components()
        ]


class FanOutStack:
    """
    PostgreSQL, the emulator and Airflow (LocalExecutor, four ``airflow`` processes) in one temp dir.

    :param airflow_env: environment on top of the harness's (parallelism, limits...).
    :param functions: ``{file name: text}`` written into the emulator's functions dir.
    :param max_workers: the emulator's ``--max-workers`` (concurrent invocations).
    :param gateway_timeout: the emulator's ``--gateway-timeout`` (seconds).
    :param provider_ref: run ``airflow_provider_fgs`` as committed at this git ref (extracted into the
        temp dir, first on every process's ``PYTHONPATH``) instead of the working tree.
    """

    def __init__(
        self,
        *,
        airflow_env: Mapping[str, str],
        functions: Mapping[str, str],
        max_workers: int,
        gateway_timeout: float,
        provider_ref: str | None = None,
    ) -> None:
        # /tmp, world-traversable: PostgreSQL runs as its own user and writes its log under home/logs
        self.workdir = Path(tempfile.mkdtemp(prefix="fgs-fan-out-"))
        self.workdir.chmod(0o755)
        self.home = self.workdir / "airflow_home"
        self.functions = self.workdir / "functions"
        self.dags = self.workdir / "dags"
        self.counts = self.workdir / "counts"  # the handler's run counts (bench writes DAGs into dags)
        for folder in (self.home, self.functions, self.dags, self.counts):
            folder.mkdir()
        self.counts.chmod(0o777)  # written by the emulator's workers
        for name, text in functions.items():
            (self.functions / name).write_text(text, encoding="utf-8")
        self.provider = "working tree " + describe_tree()
        python_path = dict(os.environ).get("PYTHONPATH", "")
        if provider_ref:
            self.provider = extract_provider(provider_ref, self.workdir / "provider")
            python_path = os.pathsep.join(filter(None, [str(self.workdir / "provider"), python_path]))
        path_env = {"PYTHONPATH": python_path} if python_path else {}
        self.logs_dir = self.home / "logs"
        self.postgres = PostgresServer(self.logs_dir)
        self.emulator = ManagedProcess(
            "emulator",
            [
                sys.executable,
                "-m",
                "airflow_provider_fgs.emulator.cli",
                "--port",
                "0",
                "--functions",
                str(self.functions),
                "--max-workers",
                str(max_workers),
                "--gateway-timeout",
                f"{gateway_timeout:g}",
            ],
            env={**os.environ, "PYTHONUNBUFFERED": "1", **path_env},
            log_path=self.logs_dir / "fgs-emulator.log",
            cwd=self.workdir,
        )
        self.emulator_url = ""
        self.airflow = _RequestCountingTriggerer(
            self.home,
            self.dags,
            extra_env={"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url(), **path_env, **airflow_env},
            startup_timeout=240.0,
        )
        self.api: AirflowApi | None = None

    def start(self) -> None:
        """Start PostgreSQL, the emulator and Airflow; create the connection through the REST API."""
        self.postgres.start()
        self.emulator.start()

        def url() -> str | None:
            match = re.search(r"^(http://\S+)$", tail(self.emulator.log_path, 200), re.MULTILINE)
            return match.group(1) if match else None

        self.emulator_url = wait_for("fgs-emulator to print its URL", url, 30, [self.emulator])
        self.airflow.start()
        self.api = AirflowApi(self.airflow.url, ADMIN_USER, self.airflow.password, on_timeout=self.logs)
        self.api.create_connection(self.connection_body())

    def connection_body(self) -> dict[str, Any]:
        """``functiongraph_default`` to the emulator with its demo key (as ``Deployment.connection_body``)."""
        access_key, secret_key = next(iter(DEFAULT_ACCESS_KEYS.items()))
        extra = {
            "region": DEFAULT_REGION,
            "project_id": DEFAULT_PROJECT_ID,
            "endpoint": self.emulator_url,
            "iam_endpoint": self.emulator_url,
        }
        return {
            "connection_id": CONN_ID,
            "conn_type": "functiongraph",
            "login": access_key,
            "password": secret_key,
            "extra": json.dumps(extra),
        }

    def stop(self, keep: bool = False) -> None:
        """Stop everything (Airflow, emulator, PostgreSQL); remove the temp dir unless ``keep``."""
        try:
            self.airflow.stop()
            self.airflow.check_loopback()  # nothing a bench runs may leave loopback
        finally:
            try:
                self.emulator.stop()
            finally:
                try:
                    self.postgres.stop()
                finally:
                    if not keep:
                        shutil.rmtree(self.workdir, ignore_errors=True)

    def processes(self) -> dict[str, ManagedProcess]:
        """Every component by name: the four Airflow processes, ``postgres`` and ``emulator``."""
        found = {p.name: p for p in self.airflow.processes}
        found["postgres"] = self.postgres.process
        found["emulator"] = self.emulator
        return found

    def roots(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes().items() if process.popen}

    def check_alive(self) -> None:
        dead = [
            f"{n} (exit {p.exit_code()})" for n, p in self.processes().items() if p.exit_code() is not None
        ]
        if dead:
            raise DeploymentError(f"component(s) died: {', '.join(dead)}")

    def logs(self, lines: int = 40) -> str:
        """The tail of every component's log (the harness's ``logs()`` plus PostgreSQL and the emulator)."""
        return self.airflow.logs(lines) + describe_logs([self.postgres.process, self.emulator], lines)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of one read-only query on the metadata database."""
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1",
            port=self.postgres.port,
            user=self.postgres.user,
            password=self.postgres.password,
            dbname=self.postgres.database,
            connect_timeout=5,
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            connection.close()


def describe_tree() -> str:
    """``<commit>`` and the provider's files changed since it, if any."""
    head = _git("rev-parse", "--short", "HEAD").strip()
    changed = _git("status", "--porcelain", "--", "airflow_provider_fgs").splitlines()
    return f"{head}" + (
        f" + {len(changed)} uncommitted change(s) in airflow_provider_fgs/" if changed else ""
    )


def extract_provider(ref: str, target: Path) -> str:
    """``git archive`` the provider package at ``ref`` into ``target``; returns ``ref (commit)``."""
    import subprocess

    target.mkdir()
    commit = _git("rev-parse", "--short", f"{ref}^{{commit}}").strip()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "airflow_provider_fgs"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return f"{ref} ({commit}), extracted to {target}"


def _git(*args: str) -> str:
    import subprocess

    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else "?"


# -- CPU accounting from /proc ---------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SIGCHLD_BIT = 1 << (17 - 1)  # SIGCHLD is 17 on Linux; SigIgn bit n-1 is signal n
TASK_TITLE = re.compile(r"^airflow worker -- [0-9a-f]{8}-[0-9a-f]{4}-")
"""The task process's title (task_runner.py sets ``airflow worker -- <ti id>``)."""


@dataclass(frozen=True)
class Proc:
    """One process as ``/proc/<pid>/stat`` shows it; CPU in seconds."""

    pid: int
    start: int  # start time in clock ticks since boot: (pid, start) names a process uniquely
    ppid: int
    own: float  # utime + stime
    children: float  # cutime + cstime: waited-for children, recursively
    title: str = ""
    ignores_sigchld: bool = False
    state: str = ""  # R, S, Z (exited, not yet reaped: its times are still its own)...

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start)

    @property
    def total(self) -> float:
        return self.own + self.children


def _read_stat(pid: int) -> tuple[int, int, float, float, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; rest[0] is field 3 (state)
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    start = int(rest[19])
    return ppid, start, (utime + stime) / CLOCK_TICKS, (cutime + cstime) / CLOCK_TICKS, rest[0]


def _title(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def _ignores_sigchld(pid: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) & SIGCHLD_BIT)
    except OSError:
        pass
    return False


def _all_stats() -> dict[int, tuple[int, int, float, float, str]]:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _read_stat(int(entry))
            if found is not None:
                stats[int(entry)] = found
    return stats


@dataclass
class Snapshot:
    """Every process of each component's tree at one moment: ``{component: {(pid, start): Proc}}``."""

    at: float
    trees: dict[str, dict[tuple[int, int], Proc]]

    @classmethod
    def take(
        cls,
        roots: Mapping[str, int],
        details: bool = True,
        titles: dict[Any, str] | None = None,
        fresh_titles: Iterable[str] = (),
    ) -> Snapshot:
        """
        Read ``/proc`` once and walk each root's descendants.

        :param details: read titles and the SIGCHLD disposition too (``/proc/<pid>/cmdline``, ``status``).
        :param titles: a cache of titles by (pid, start), for the sampler (read once per process)...
        :param fresh_titles: ...except in these trees, whose processes retitle themselves (setproctitle).
        """
        fresh = set(fresh_titles)
        at = time.monotonic()
        stats = _all_stats()
        children: dict[int, list[int]] = {}
        for pid, (ppid, *_) in stats.items():
            children.setdefault(ppid, []).append(pid)
        trees: dict[str, dict[tuple[int, int], Proc]] = {}
        for name, root in roots.items():
            tree: dict[tuple[int, int], Proc] = {}
            todo = [root] if root in stats else []
            while todo:
                pid = todo.pop()
                ppid, start, own, kids, state = stats[pid]
                title = ""
                if titles is not None and name not in fresh:
                    title = titles.get((pid, start)) or titles.setdefault((pid, start), _title(pid))
                elif details or name in fresh:
                    title = _title(pid)
                ignores = _ignores_sigchld(pid) if details else False
                if state == "Z" and not title:
                    title = "<zombie>"
                proc = Proc(pid, start, ppid, own, kids, title, ignores, state)
                tree[proc.key] = proc
                todo.extend(children.get(pid, ()))
            trees[name] = tree
        return cls(at, trees)


@dataclass
class WindowCpu:
    """One component's CPU over a window, with how it was made up."""

    seconds: float
    born: list[Proc] = field(default_factory=list)  # alive at the end, not there at the start: whole
    reaped: list[Proc] = field(default_factory=list)  # there at the start, gone, rolled up into a parent
    lost: list[Proc] = field(default_factory=list)  # gone, parent ignores SIGCHLD or is not in the tree
    children_growth: float = 0.0  # growth of cutime+cstime of processes alive at both ends


def window_cpu(start: Mapping[tuple[int, int], Proc], end: Mapping[tuple[int, int], Proc]) -> WindowCpu:
    """The CPU seconds a process tree used between two snapshots (see the module docstring)."""
    result = WindowCpu(sum(p.total for p in end.values()))
    by_pid = {p.pid: p for p in start.values()}
    for key, proc in start.items():
        if key in end:
            result.seconds -= proc.total
            result.children_growth += end[key].children - proc.children
            continue
        parent = by_pid.get(proc.ppid)
        if parent is not None and not parent.ignores_sigchld:
            result.seconds -= proc.total  # its whole time is in the parent's children times now
            result.reaped.append(proc)
        else:
            result.lost.append(proc)  # its time is in no end figure: neither counted nor subtracted
    result.born = [proc for key, proc in end.items() if key not in start]
    return result


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class Sampler(threading.Thread):
    """
    Reads the trees every ``interval`` seconds during a window (cheap: ``/proc/*/stat`` once per tick):
    which processes lived only inside the window and their last-seen CPU (a lower bound of what their
    parents' ``cutime``/``cstime`` must have grown by), how many task processes ran at once, and the
    resident memory of the ``rss_trees``' processes (first seen and peak).
    """

    def __init__(
        self, roots: Mapping[str, int], interval: float = 0.5, rss_trees: Iterable[str] = ("triggerer",)
    ) -> None:
        super().__init__(name="cpu-sampler", daemon=True)
        self.roots = dict(roots)
        self.interval = interval
        self.seen: dict[str, dict[tuple[int, int], Proc]] = {name: {} for name in roots}
        self.titles: dict[tuple[int, int], str] = {}
        self.task_processes: set[tuple[int, int]] = set()
        self.peak_task_processes = 0
        self.ticks = 0
        self.rss_trees = set(rss_trees)
        self.rss_first: dict[tuple[int, int], int] = {}
        self.rss_peak: dict[tuple[int, int], int] = {}
        self._rss_tree_of: dict[tuple[int, int], str] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            snap = Snapshot.take(self.roots, details=False, titles=self.titles, fresh_titles=["scheduler"])
            tasks_now = 0
            for name, tree in snap.trees.items():
                seen = self.seen[name]
                for key, proc in tree.items():
                    old = seen.get(key)
                    if old is not None and old.title and proc.state == "Z":  # name it as it was
                        title = old.title if old.title.endswith("<zombie>") else f"{old.title} <zombie>"
                        proc = replace(proc, title=title)
                    seen[key] = proc
                for key, proc in tree.items():
                    if TASK_TITLE.match(proc.title):
                        tasks_now += 1
                        self.task_processes.add(key)
                    if name in self.rss_trees:
                        self._sample_rss(name, key)
            self.peak_task_processes = max(self.peak_task_processes, tasks_now)
            self.ticks += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

    def _sample_rss(self, tree: str, key: tuple[int, int]) -> None:
        try:
            with open(f"/proc/{key[0]}/statm", encoding="ascii") as statm:
                resident = int(statm.read().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            return
        self._rss_tree_of[key] = tree
        self.rss_first.setdefault(key, resident)
        self.rss_peak[key] = max(self.rss_peak.get(key, 0), resident)

    def rss_growth_mb(self, tree: str) -> float:
        """The largest growth of one process of ``tree`` over the window: its peak RSS minus its first."""
        growth = [
            self.rss_peak[key] - self.rss_first[key]
            for key, name in self._rss_tree_of.items()
            if name == tree
        ]
        return max(growth, default=0) / 2**20

    def short_lived(self, name: str, start: Snapshot, end: Snapshot) -> list[Proc]:
        """Processes of tree ``name`` the sampler saw that were in neither snapshot."""
        return [
            proc
            for key, proc in self.seen[name].items()
            if key not in start.trees[name] and key not in end.trees[name]
        ]


# -- logs ------------------------------------------------------------------------------------------


class LogMarks:
    """Byte offsets of log files at one moment, to read what was written after it."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.offsets = {path: (path.stat().st_size if path.exists() else 0) for path in paths}

    def since(self, path: Path) -> list[str]:
        """The complete lines written to ``path`` since the mark (a file not marked: all of it)."""
        offset = self.offsets.get(path, 0)
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        return data[: end + 1].decode("utf-8", "replace").splitlines() if end >= 0 else []


_STRUCTLOG_LEVEL = re.compile(r"^\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)? \[(\w+)\s*\] ")
"""A component's structlog console line (``2026-01-01T00:00:00.000000Z [warning  ] message``)."""
_CLASSIC_LEVEL = re.compile(r"\b(ERROR|WARNING|CRITICAL|FATAL|PANIC)\b[:\s-]")
_NOISE = [
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d| UTC)?"), "<time>"),
    (re.compile(r"manual__\S+"), "<run_id>"),
    (re.compile(r"\b0x[0-9a-f]+\b"), "<hex>"),
    (re.compile(r"\d+(\.\d+)?"), "<n>"),
]


def problem(line: str) -> tuple[str, str] | None:
    """``(level, message)`` when ``line`` is an ERROR or WARNING line of any of the logs here."""
    stripped = line.strip()
    if stripped.startswith("{") and stripped.endswith("}"):  # task and trigger logs: JSON lines
        try:
            record = json.loads(stripped)
        except ValueError:
            record = None
        if isinstance(record, dict):
            level = str(record.get("level", "")).lower()
            if level not in ("error", "warning", "critical", "exception"):
                return None
            message = str(record.get("event", ""))
            if record.get("logger"):
                message = f"{message} [{record['logger']}]"
            return level, message
    match = _STRUCTLOG_LEVEL.match(stripped)
    if match:  # the level is the bracketed one, whatever the message says
        level = match.group(1)
        if level not in ("error", "warning", "critical", "exception"):
            return None
        return level, stripped[match.end() :]
    match = _CLASSIC_LEVEL.search(stripped)
    if match:
        return match.group(1).lower(), stripped[match.start() :]
    return None


def normalise(message: str, width: int = 160) -> str:
    """The message with times, ids and numbers replaced, so repeats of one message group together."""
    for pattern, replacement in _NOISE:
        message = pattern.sub(replacement, message)
    message = re.sub(r"\s+", " ", message).strip()
    return message if len(message) <= width else message[: width - 3] + "..."


def problems(lines: Iterable[str]) -> Counter[tuple[str, str]]:
    """``{(level, normalised message): count}`` over ``lines``."""
    found: Counter[tuple[str, str]] = Counter()
    for line in lines:
        hit = problem(line)
        if hit is not None:
            found[(hit[0], normalise(hit[1]))] += 1
    return found
