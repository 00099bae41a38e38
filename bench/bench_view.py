"""
The FunctionGraph view's answer times in a large deployment, beside Airflow's own DAG list.

For each metadata database (sqlite, PostgreSQL), builds a deployment of ``--dags`` DAGs (four
FunctionGraph tasks each, one mapped, one deferrable, one batch, and two plain tasks) with ``--runs``
runs per DAG over the last 30 days (``--dags 5000 --runs 8``: 200,000 FunctionGraph task instances and
their XComs; bench/_view_population.py), starts Airflow's API server on it, and times each view endpoint
as the page calls it: the median of ``--requests`` answers after the first, and the first one (the
catalog read cold), beside ``GET /api/v2/dags`` (the list Airflow's UI opens with) in the same run.
Goals (issue #30): every endpoint HTTP 200 within 300 ms median and within 5x Airflow's DAG list.

Only the API server runs (no scheduler or DAG processor: the DAGs have no files, and nothing must
change while it is timed). Everything runs on loopback, in a temporary directory.

Run: ``python bench/bench_view.py [--dags N] [--runs N] [--requests N] [--databases sqlite postgresql]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the integration harness lives in tests/integration
    sys.path.insert(0, str(ROOT))

from tests.integration.airflow_api import AirflowApi  # noqa: E402
from tests.integration.browser import chromium, chromium_missing_reason  # noqa: E402
from tests.integration.deployment import ADMIN_USER, AirflowDeployment  # noqa: E402
from tests.integration.processes import DeploymentError, wait_for  # noqa: E402
from tests.integration.services import PostgresServer  # noqa: E402

AIRFLOWS_LIST = ("Airflow: /api/v2/dags", "/api/v2/dags", {"limit": 50})
VIEW_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("functions (page 1)", "/functiongraph/api/functions", {"limit": 100}),
    ("functions, searched", "/functiongraph/api/functions", {"limit": 100, "search": "fn_7"}),
    ("invocations (page 1)", "/functiongraph/api/invocations", {"limit": 25}),
    (
        "invocations, one function",
        "/functiongraph/api/invocations",
        {"limit": 25, "function": "default/fn_7", "conn_id": "functiongraph_default"},
    ),
    ("batches (page 1)", "/functiongraph/api/batches", {"limit": 25}),
    ("stats 24h", "/functiongraph/api/stats", {"window": "24h"}),
    ("stats 7d", "/functiongraph/api/stats", {"window": "7d"}),
    ("stats 30d", "/functiongraph/api/stats", {"window": "30d"}),
    (
        "stats 30d, one function",
        "/functiongraph/api/stats",
        {"window": "30d", "function": "default/fn_7", "conn_id": "functiongraph_default"},
    ),
]
PAGE_LOAD = "page with charts, in Chromium"
GOAL_MS = 300.0
GOAL_RATIO = 5.0
GOAL_PAGE_MS = 2000.0


class ApiServerOnly(AirflowDeployment):
    """The integration harness's deployment with its API server alone."""

    def components(self) -> list[tuple[str, list[str], dict[str, str]]]:
        return [c for c in super().components() if c[0] == "api-server"]


def _run(command: list[str], env: dict[str, str], log: Path, timeout: float) -> str:
    with log.open("ab") as out:
        done = subprocess.run(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
    text = log.read_text(errors="replace")
    if done.returncode != 0:
        raise DeploymentError(f"{' '.join(command[:4])} failed ({done.returncode}):\n{text[-3000:]}")
    return text


def page_load_ms(
    url: str, token: str, repeats: int, profile: Path, screenshot: Path | None = None
) -> tuple[float, float] | None:
    """
    (first, median) ms from opening the view's page in Chromium until its charts and its first function
    are drawn; ``None`` when no Chromium is installed. With ``screenshot``, then saves the charts of the
    last 7 days there (the picture of docs/operating.md).
    """
    if chromium_missing_reason() is not None:
        return None
    times = []
    with chromium(profile) as context:
        context.add_cookies([{"name": "_token", "value": token, "url": url}])  # the UI's session
        page = context.new_page()
        for _ in range(repeats + 1):
            started = time.perf_counter()
            page.goto(f"{url}/functiongraph/")
            page.wait_for_selector("[data-testid=chart-outcomes]", timeout=60_000)
            page.wait_for_selector("[data-testid=functions] tbody tr", timeout=60_000)
            times.append((time.perf_counter() - started) * 1000)
        if screenshot is not None:
            page.set_viewport_size({"width": 1360, "height": 900})
            page.click("[data-testid=window-7d]")
            page.wait_for_function(
                "document.querySelectorAll('[data-testid=chart-outcomes] g').length === 28", timeout=60_000
            )
            page.locator("[data-testid=charts]").screenshot(path=str(screenshot))
    return times[0], statistics.median(times[1:])


def measure(
    database: str, dags: int, runs: int, repeats: int, screenshot: Path | None = None
) -> dict[str, tuple[float, float]]:
    """``{request: (first ms, median ms)}`` for Airflow's list and each view request on ``database``."""
    workdir = Path(tempfile.mkdtemp(prefix=f"fgs-bench-view-{database}-"))
    workdir.chmod(0o755)  # PostgreSQL runs as its own user and writes its log under home/logs
    home, dags_folder = workdir / "airflow_home", workdir / "dags"
    for folder in (home, dags_folder, home / "logs"):
        folder.mkdir(parents=True)
    postgres = PostgresServer(home / "logs") if database == "postgresql" else None
    extra = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url()} if postgres else {}
    airflow = ApiServerOnly(home, dags_folder, extra_env=extra, startup_timeout=600)
    log = home / "logs" / "population.log"
    try:
        if postgres:
            postgres.start()
        _run([sys.executable, "-m", "airflow", "db", "migrate"], airflow.env, log, 600)
        began = time.perf_counter()
        text = _run(
            [sys.executable, str(ROOT / "bench" / "_view_population.py"), str(dags), str(runs)],
            airflow.env,
            log,
            3600,
        )
        print(
            f"  {database}: {text.strip().splitlines()[-1]} ({time.perf_counter() - began:.0f} s)", flush=True
        )
        airflow.start_component("api-server")

        def answers() -> bool | None:
            try:
                return requests.get(f"{airflow.url}/api/v2/version", timeout=5).ok or None
            except requests.ConnectionError:
                return None

        wait_for("the API server to answer", answers, 180, airflow.processes)
        api = AirflowApi(airflow.url, ADMIN_USER, airflow.password, on_timeout=airflow.logs)
        figures = {}
        for name, path, params in [AIRFLOWS_LIST, *VIEW_REQUESTS]:
            times = []
            for _ in range(repeats + 1):
                started = time.perf_counter()
                response = api.session.get(f"{airflow.url}{path}", params=params, timeout=120)
                times.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise DeploymentError(
                        f"{name} on {database}: HTTP {response.status_code} {response.text[:500]}"
                    )
            figures[name] = (times[0], statistics.median(times[1:]))
        load = page_load_ms(airflow.url, api.token, repeats, workdir / "chromium", screenshot)
        if load is not None:
            figures[PAGE_LOAD] = load
        airflow.check_loopback()
        return figures
    finally:
        airflow.stop()
        if postgres:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dags", type=int, default=5000)
    parser.add_argument(
        "--runs", type=int, default=8, help="runs per DAG (5 FunctionGraph task instances each)"
    )
    parser.add_argument("--requests", type=int, default=7, help="timed answers per request, after the first")
    parser.add_argument(
        "--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument(
        "--screenshot", type=Path, help="save the charts of the last 7 days here (the first database's)"
    )
    args = parser.parse_args()
    print(
        f"{args.dags} DAGs, {args.dags * args.runs} runs, {args.dags * args.runs * 5} FunctionGraph task "
        f"instances; median of {args.requests} answers after the first (ms)",
        flush=True,
    )
    results = {
        database: measure(database, args.dags, args.runs, args.requests, args.screenshot if i == 0 else None)
        for i, database in enumerate(args.databases)
    }
    header = f"{'request':<30}" + "".join(
        f"{db + ' first':>18}{db + ' median':>18}{'x Airflow':>11}" for db in results
    )
    print(header)
    failed = []
    for name, _, _ in [AIRFLOWS_LIST, *VIEW_REQUESTS, (PAGE_LOAD, "", {})]:
        if not all(name in figures for figures in results.values()):
            continue
        line = f"{name:<30}"
        for database, figures in results.items():
            first, median = figures[name]
            ratio = median / figures[AIRFLOWS_LIST[0]][1]
            line += f"{first:>18.0f}{median:>18.0f}{ratio if name != PAGE_LOAD else float('nan'):>11.1f}"
            if name == PAGE_LOAD:
                if median > GOAL_PAGE_MS:
                    failed.append(f"the page on {database}: {median:.0f} ms")
            elif name != AIRFLOWS_LIST[0] and (median > GOAL_MS or ratio > GOAL_RATIO):
                failed.append(f"{name} on {database}: {median:.0f} ms, {ratio:.1f}x")
        print(line)
    print(
        f"goal: every view request within {GOAL_MS:.0f} ms median and {GOAL_RATIO:.0f}x Airflow's DAG list; "
        f"the page with its charts within {GOAL_PAGE_MS / 1000:.0f} s"
    )
    print("goal met" if not failed else "goal missed: " + "; ".join(failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
