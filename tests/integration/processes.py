"""Background processes for the integration tests: each in its own process group, logged to a file.

Everything started here is stopped by ``ManagedProcess.stop()``: the whole process group and any
descendant that left it (Airflow's task supervisors may start new sessions), first with SIGTERM,
then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import psutil  # type: ignore[import-untyped]  # an Airflow dependency; no stubs installed

T = TypeVar("T")


class DeploymentError(RuntimeError):
    """A component did not start, died, or a bounded wait ran out."""


def tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a text file (empty when it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """
    A command running in the background in a new session, its output appended to ``log_path``.

    :param name: short name used in messages, e.g. ``scheduler``.
    :param argv: the command line.
    :param env: the complete environment of the process.
    :param log_path: file receiving stdout and stderr.
    :param cwd: working directory.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process in a new session (so it gets its own process group)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise DeploymentError(f"{self.name} was never started")
        return self.popen.pid

    def exit_code(self) -> int | None:
        """The exit code, or None while it runs (or was never started)."""
        return None if self.popen is None else self.popen.poll()

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def stop(self, grace: float = 5.0) -> None:
        """Stop the process group and every descendant; SIGKILL what is left after ``grace`` seconds."""
        stop_all([self], grace)

    def _family(self) -> list[psutil.Process]:
        if self.popen is None:
            return []
        try:
            root = psutil.Process(self.popen.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []


def stop_all(processes: Sequence[ManagedProcess], grace: float = 5.0) -> None:
    """
    Stop several processes together: SIGTERM to all of them, then SIGKILL whatever is left.

    Each process's group and every descendant (even one that started its own session) is signalled.
    """
    started = [p for p in processes if p.popen is not None]
    family = [proc for p in started for proc in p._family()]
    for p in started:
        _signal_group(p.pid, signal.SIGTERM)
    for proc in family:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(family, timeout=grace)
    for p in started:
        _signal_group(p.pid, signal.SIGKILL)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    for p in started:
        assert p.popen is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.popen.wait(timeout=5)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    processes: Sequence[ManagedProcess] = (),
    interval: float = 0.5,
) -> T:
    """
    Call ``probe`` until it returns something other than None, or fail after ``timeout`` seconds.

    Fails early when one of ``processes`` exits. The failure message includes the tail of every
    process's log, so a CI failure explains itself.

    :param what: what is awaited, for the message.
    :param probe: returns the awaited value, or None to keep waiting.
    :param timeout: seconds.
    :param processes: components whose death ends the wait and whose logs go into the message.
    :param interval: seconds between probes.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = probe()
            if value is not None:
                return value
        except Exception as exc:  # a probe may fail while a component is still starting
            last_error = exc
        dead = [p for p in processes if p.exit_code() is not None]
        if dead or time.monotonic() >= deadline:
            reason = (
                ", ".join(f"{p.name} exited with code {p.exit_code()}" for p in dead)
                if dead
                else f"not done after {timeout:.0f}s"
            )
            raise DeploymentError(
                f"Waiting for {what}: {reason}"
                + (f"; last probe error: {last_error!r}" if last_error else "")
                + describe_logs(processes)
            )
        time.sleep(interval)


def describe_logs(processes: Sequence[ManagedProcess], lines: int = 40) -> str:
    """The tail of each process's log, one block each."""
    blocks = [f"\n----- {p.name} ({p.log_path}) -----\n{p.log_tail(lines)}" for p in processes]
    return "".join(blocks)
