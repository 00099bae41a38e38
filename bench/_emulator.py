"""Shared by the bench scripts: run ``fgs-emulator`` (the CLI) as a separate process on a free port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def emulator_process(functions: Path, *, max_workers: int | None = None) -> Iterator[tuple[int, str]]:
    """
    Start the emulator CLI serving ``functions``; yield ``(pid, base URL)``; terminate it on exit.

    A separate process keeps the client's measurements (time, memory) apart from the server's.
    """
    command = [
        sys.executable,
        "-m",
        "airflow_provider_fgs.emulator.cli",
        "--port",
        "0",
        "--functions",
        str(functions),
    ]
    if max_workers is not None:
        command += ["--max-workers", str(max_workers)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()  # the CLI prints its URL first, once it listens
        if not url.startswith("http"):
            raise SystemExit(f"fgs-emulator did not print its URL (got {url!r})")
        yield process.pid, url
    finally:
        process.terminate()
        process.wait(timeout=30)
