"""
The batch engine's client cost beside the transports' floors, in one run against one emulator process.

N invocations of a handler that sleeps S seconds, at most C in flight, four ways:

  aiohttp floor   one aiohttp.ClientSession, a semaphore, a pre-issued token: nothing but the transport
  httpx floor     one httpx.AsyncClient whose pool holds C connections, the same way
  engine          the provider's BatchRun (one AsyncFunctionGraphClient over aiohttp: IAM token, retry
                  policy, metrics, the ledger's claims and checkpoints in memory, progress lines)
  engine, AK/SK   the same with every request signed (SDK-HMAC-SHA256)

Each prints its wall time beside the ideal (N / C x S) and the CPU of this process per call; the
emulator runs as a separate process (``fgs-emulator``), so its CPU is not in the figures.

Run: ``python bench/bench_batch_client.py [--calls 2000] [--concurrency 100] [--sleep 0.5]``
Goals (issue #28, for the engine): wall at most 1.25x the ideal and about 1 ms of client CPU per call.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from _emulator import emulator_process

HANDLER = """
import time

def handler(event, context):
    time.sleep(float(event["seconds"]))
    return {"n": event["n"]}
"""
TARGET_WALL = 1.25
TARGET_CPU_MS = 1.0


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class MemoryStore:
    """The ledger in memory (JSON-encoded, as Airflow Variables would hold it)."""

    def __init__(self) -> None:
        self.records: dict[str, Any] = {}

    async def get(self, name: str) -> Any:
        return copy.deepcopy(self.records.get(name))

    async def put(self, name: str, value: Any) -> None:
        self.records[name] = json.loads(json.dumps(value))

    async def delete(self, name: str) -> None:
        self.records.pop(name, None)

    def where(self) -> str:
        return "memory"


async def floor(which: str, url: str, token: str, args: argparse.Namespace) -> list[int]:
    headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    bodies = [json.dumps({"n": n, "seconds": args.sleep}) for n in range(args.calls)]
    gate = asyncio.Semaphore(args.concurrency)
    if which == "aiohttp":
        import aiohttp

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency)) as session:

            async def one_aiohttp(body: str) -> int:
                async with gate, session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    return response.status

            return await asyncio.gather(*(one_aiohttp(body) for body in bodies))
    import httpx

    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def one_httpx(body: str) -> int:
            async with gate:
                response = await client.post(url, content=body, headers=headers)
                return response.status_code

        return await asyncio.gather(*(one_httpx(body) for body in bodies))


async def engine(base_url: str, auth: str, args: argparse.Namespace) -> Any:
    from airflow_provider_fgs.client.async_client import AsyncFunctionGraphClient
    from airflow_provider_fgs.client.batch import BatchRun
    from airflow_provider_fgs.client.batch_io import BatchOptions, ListSource
    from airflow_provider_fgs.client.settings import parse_connection
    from airflow_provider_fgs.emulator.server import DEFAULT_PROJECT_ID, DEFAULT_REGION
    from airflow_provider_fgs.protocol.invocation import Invocation

    extra = {"region": DEFAULT_REGION, "project_id": DEFAULT_PROJECT_ID, "endpoint": base_url}
    if auth == "aksk":
        login, password = "DEMOACCESSKEY", "demo-secret-key"
    else:
        login, password = "demo-user", "demo-password"
        extra.update(domain_name="demo-domain", iam_endpoint=base_url, host_cache=False)

    class Conn:
        conn_id = f"bench_{auth}"
        host = None
        port = None
        extra_dejson = extra

    Conn.login, Conn.password = login, password  # type: ignore[attr-defined]
    settings = parse_connection(Conn())  # type: ignore[arg-type]
    urn = f"urn:fss:{DEFAULT_REGION}:{DEFAULT_PROJECT_ID}:function:default:sleep:latest"
    source = ListSource([{"n": n, "seconds": args.sleep} for n in range(args.calls)])
    quiet = logging.getLogger("bench.batch")
    quiet.setLevel(logging.WARNING)
    async with AsyncFunctionGraphClient(settings) as client:
        run = BatchRun(
            client,
            Invocation(function_urn=urn, log_type=None),
            source,
            MemoryStore(),
            try_number=1,
            options=BatchOptions(max_concurrency=args.concurrency),
            logger=quiet,
        )
        return await run.run()


def measure(what: str, work: Any, args: argparse.Namespace) -> tuple[float, float, str]:
    began_cpu, began = cpu(), time.monotonic()
    outcome = asyncio.run(work)
    wall, used = time.monotonic() - began, cpu() - began_cpu
    if isinstance(outcome, list):
        ok = f"{sum(code == 200 for code in outcome)} answered 200"
    else:
        ok = f"{outcome.summary['success']} succeeded ({outcome.status})"
    return wall, used * 1000 / args.calls, ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--sleep", type=float, default=0.5)
    args = parser.parse_args()

    functions = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    (functions / "sleep.py").write_text(HANDLER)
    (functions / "sleep.json").write_text(json.dumps({"timeout": 60}))
    ideal = args.calls / args.concurrency * args.sleep
    with emulator_process(functions, max_workers=max(256, args.concurrency)) as (_, url):
        from airflow_provider_fgs.emulator.server import DEFAULT_PROJECT_ID, DEFAULT_REGION

        user = {"name": "demo-user", "password": "demo-password", "domain": {"name": "demo-domain"}}
        auth = {
            "auth": {
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": {"project": {"id": DEFAULT_PROJECT_ID}},
            }
        }
        token = requests.post(f"{url}/v3/auth/tokens", json=auth, timeout=30).headers["X-Subject-Token"]
        urn = f"urn:fss:{DEFAULT_REGION}:{DEFAULT_PROJECT_ID}:function:default:sleep:latest"
        invoke_url = f"{url}/v2/{DEFAULT_PROJECT_ID}/fgs/functions/{urn}/invocations"
        print(
            f"{args.calls} calls of {args.sleep:g} s at {args.concurrency} in flight (ideal {ideal:.1f} s); "
            "client CPU is this process's"
        )
        asyncio.run(floor("aiohttp", invoke_url, token, argparse.Namespace(**{**vars(args), "calls": 50})))
        rows = [
            ("aiohttp floor", floor("aiohttp", invoke_url, token, args)),
            ("httpx floor (one pool)", floor("httpx", invoke_url, token, args)),
            ("engine (IAM token)", engine(url, "password", args)),
            ("engine (AK/SK signed)", engine(url, "aksk", args)),
        ]
        results = {}
        print(f"{'':<24}{'wall s':>8}{'x ideal':>9}{'CPU ms/call':>13}  outcome")
        for name, work in rows:
            wall, per_call, ok = measure(name, work, args)
            results[name] = (wall, per_call)
            print(f"{name:<24}{wall:8.1f}{wall / ideal:9.2f}{per_call:13.2f}  {ok}")
    wall, per_call = results["engine (IAM token)"]
    met = wall / ideal <= TARGET_WALL and per_call <= TARGET_CPU_MS * 1.5
    print(
        f"engine against the goals (wall <= {TARGET_WALL}x ideal, about {TARGET_CPU_MS:g} ms CPU per call): "
        f"{wall / ideal:.2f}x, {per_call:.2f} ms -> {'met' if met else 'NOT met'}; "
        f"{per_call / results['aiohttp floor'][1]:.1f}x the aiohttp floor's CPU per call"
    )


if __name__ == "__main__":
    main()
