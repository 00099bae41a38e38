"""
Emulator throughput: a no-op handler's invoke round trip through ``fgs-emulator``.

Measures invocations per second at concurrency 1 and 16 (a bounded number of calls each), prints
latency percentiles and the ratio, then a burst of concurrent 1-second invocations (all must
overlap: wall time close to 1 s) with the memory of the worker processes during the burst.
The emulator runs as a separate process (the CLI) so the client does not share its interpreter.

Run: ``python bench/bench_emulator.py [--calls 400] [--concurrency 16] [--burst 200]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from _emulator import emulator_process

HANDLERS = {
    "noop.py": "def handler(event, context):\n    return None\n",
    "sleeper.py": "import time\n\ndef handler(event, context):\n    time.sleep(event.get('seconds', 1))\n",
    "sleeper.json": '{"timeout": 30}',  # the emulator's default is FunctionGraph's 3 s
}
PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
USER = {"domain": {"name": "demo-domain"}, "name": "demo-user", "password": "demo-password"}


def token(url: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": USER}}}}
    return requests.post(f"{url}/v3/auth/tokens", json=body, timeout=30).headers["X-Subject-Token"]


def run(url: str, tok: str, name: str, calls: int, concurrency: int, event: dict[str, float]) -> list[float]:
    """Latencies (s) of ``calls`` invocations made by ``concurrency`` threads."""
    urn = f"urn:fss:ap-southeast-1:{PROJECT}:function:default:{name}"
    invoke = f"{url}/v2/{PROJECT}/fgs/functions/{urn}/invocations"
    headers = {"X-Auth-Token": tok, "Content-Type": "application/json", "X-CFF-Request-Version": "v1"}
    # bytes, not str: http.client then sends headers and body in one write (no Nagle/delayed-ACK stall)
    body = json.dumps(event).encode()
    local = threading.local()

    def one(_: int) -> float:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        began = time.perf_counter()
        response = session.post(invoke, data=body, headers=headers, timeout=120)
        elapsed = time.perf_counter() - began
        if response.status_code != 200 or response.headers.get("X-Is-Func-Err") != "false":
            raise RuntimeError(f"invoke failed: {response.status_code} {response.text[:200]}")
        return elapsed

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(calls)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_memory(server_pid: int) -> tuple[int, float, float]:
    """(worker count, total RSS MB, total PSS MB) of the zygote's children."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    zygotes = {pid for pid, ppid in parents.items() if ppid == server_pid}
    workers = [pid for pid, ppid in parents.items() if ppid in zygotes]
    rss = pss = 0.0
    for pid in workers:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) / 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
        except OSError:
            continue
    return len(workers), rss, pss


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=400, help="invocations per concurrency level")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--burst", type=int, default=200, help="concurrent 1-second invocations (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, code in HANDLERS.items():
            Path(tmp, name).write_text(code)
        with emulator_process(Path(tmp)) as (pid, url):
            tok = token(url)
            run(url, tok, "noop", 50, args.concurrency, {})  # warm up workers and connections
            began = time.perf_counter()
            serial = run(url, tok, "noop", args.calls, 1, {})
            serial_rate = args.calls / (time.perf_counter() - began)
            cpu_before = cpu_seconds(pid)
            began = time.perf_counter()
            run(url, tok, "noop", args.calls, args.concurrency, {})
            parallel_rate = args.calls / (time.perf_counter() - began)
            server_cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / args.calls
            ms = sorted(x * 1000 for x in serial)
            print(
                f"no-op invoke round trip (concurrency 1): median {statistics.median(ms):.2f} ms, "
                f"p95 {ms[int(len(ms) * 0.95) - 1]:.2f} ms"
            )
            print(f"concurrency 1:  {serial_rate:8.1f} invocations/s ({args.calls} calls)")
            print(f"concurrency {args.concurrency}: {parallel_rate:8.1f} invocations/s ({args.calls} calls)")
            print(f"ratio concurrency {args.concurrency} / 1: {parallel_rate / serial_rate:.2f}x")
            print(
                f"emulator server CPU per invocation: {server_cpu_ms:.2f} ms "
                f"(capacity about {1000 / server_cpu_ms:.0f} invocations/s per core; "
                f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
            )
            if args.burst:
                peak: list[tuple[int, float, float]] = []
                done = threading.Event()

                def sample() -> None:
                    while not done.wait(0.2):
                        peak.append(worker_memory(pid))

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                began = time.perf_counter()
                run(url, tok, "sleeper", args.burst, args.burst, {"seconds": 1.0})
                wall = time.perf_counter() - began
                done.set()
                sampler.join()
                count, rss, pss = max(peak, default=(0, 0.0, 0.0))
                print(
                    f"burst of {args.burst} concurrent 1 s invocations: {wall:.2f} s wall "
                    f"({args.burst / wall:.1f} invocations/s, serial would take {args.burst:.0f} s)"
                )
                if count:
                    print(
                        f"workers at peak: {count}, RSS {rss:.0f} MB total, PSS {pss:.0f} MB total "
                        f"({pss / count:.1f} MB proportional per worker)"
                    )


if __name__ == "__main__":
    main()
