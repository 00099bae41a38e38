"""
Run an example DAG end to end against the local FunctionGraph emulator, then print its XCom results.

    python example_dags/run_demo.py                       # the functiongraph_chain pipeline
    python example_dags/run_demo.py --dag functiongraph_mapped
    python example_dags/run_demo.py --all                 # every example DAG, one after the other
    python example_dags/run_demo.py --text "to be or not to be"
    python example_dags/run_demo.py --verbose             # also Airflow's own output

It prints the emulator's URL, then each task in the order it ran with its state, its XComs and the
function's log; Airflow's own start-up and task-runner output is kept out unless ``--verbose``.

Everything is hermetic: Airflow's home (config, sqlite metadata DB) is a temporary directory that is
removed afterwards, the emulator listens on a free loopback port and runs the handlers in
``example_dags/functions``, and the ``functiongraph_default`` connection (and any other the DAGs name,
such as ``functiongraph_fan_out``) comes from an ``AIRFLOW_CONN_...`` environment variable. Each DAG
runs with Airflow's own ``dag.test()``: the real scheduler logic, task runner and XCom backend, in this
one process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

EXAMPLE_DAGS = Path(__file__).resolve().parent
FUNCTIONS = EXAMPLE_DAGS / "functions"
CONN_ENV = "AIRFLOW_CONN_FUNCTIONGRAPH_DEFAULT"
DEFAULT_DAG_ID = "functiongraph_chain"


def hermetic_airflow_env(home: Path, dags_folder: Path = EXAMPLE_DAGS) -> dict[str, str]:
    """Environment that points Airflow at ``home`` (sqlite) and ``dags_folder``, without examples."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # The provider's host-wide token cache and credential cool-downs, private to this home.
        "AIRFLOW__FUNCTIONGRAPH__HOST_CACHE_DIR": str(home / "fgs-host-cache"),
    }


def emulator_connection(url: str, region: str, project_id: str) -> str:
    """The ``functiongraph`` connection, as Airflow's JSON connection format, for an emulator at ``url``."""
    return json.dumps(
        {
            "conn_type": "functiongraph",
            "login": "DEMOACCESSKEY",
            "password": "demo-secret-key",
            "extra": {"region": region, "project_id": project_id, "endpoint": url, "iam_endpoint": url},
        }
    )


def connection_ids(dags: list[Any]) -> set[str]:
    """``functiongraph_default`` and every other FunctionGraph connection the DAGs' tasks name."""
    ids = {"functiongraph_default"}
    for dag in dags:
        for task in dag.tasks:
            # A mapped task keeps the arguments it was not mapped over in partial_kwargs.
            partial = getattr(task, "partial_kwargs", {})
            conn_id = getattr(task, "functiongraph_conn_id", None) or partial.get("functiongraph_conn_id")
            if conn_id:
                ids.add(conn_id)
    return ids


def migrate_db() -> None:
    """Create the metadata DB schema, as ``airflow db migrate`` does."""
    from airflow.utils.db import upgradedb

    upgradedb()


def load_dags(dag_ids: list[str] | None) -> list[Any]:
    """Parse the example DAGs folder and return the DAGs ``dag_ids`` names (``None``: all, by id)."""
    from airflow_provider_fgs.compat import dag_bag

    bag = dag_bag(str(EXAMPLE_DAGS))
    if bag.import_errors:
        raise RuntimeError(f"Example DAGs failed to import: {bag.import_errors}")
    if dag_ids is None:
        return [bag.dags[dag_id] for dag_id in sorted(bag.dag_ids)]
    unknown = [dag_id for dag_id in dag_ids if dag_id not in bag.dags]
    if unknown:
        known = ", ".join(sorted(bag.dag_ids))
        raise LookupError(f"no DAG {', '.join(map(repr, unknown))} in {EXAMPLE_DAGS}; known: {known}")
    return [bag.dags[dag_id] for dag_id in dag_ids]


def xcom_results(dag_id: str, run_id: str) -> list[tuple[str, int, str, Any]]:
    """Every XCom of a DAG run as (task_id, map_index, key, value)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
        ).all()
        return [(row.task_id, row.map_index, row.key, XComModel.deserialize_value(row)) for row in rows]


XCOM_ORDER = ("return_value", "request_id", "billing_duration_ms", "summary", "log")


def print_report(dag_id: str, run: Any) -> None:
    """Print the run's state, then each task in the order it ran with its state and XComs."""
    pushed: dict[tuple[str, int], dict[str, Any]] = {}
    for task_id, map_index, key, value in xcom_results(dag_id, run.run_id):
        if not key.startswith("_link_"):  # extra-link URLs are for the UI
            pushed.setdefault((task_id, map_index), {})[key] = value
    print(f"\n=== {dag_id}: run {run.run_id} finished: {run.state} ===")
    tis = sorted(
        run.get_task_instances(), key=lambda ti: (ti.start_date is None, ti.start_date, ti.map_index)
    )
    for ti in tis:
        suffix = f"[{ti.map_index}]" if ti.map_index >= 0 else ""
        print(f"\n{ti.task_id}{suffix}: {ti.state}")
        values = pushed.get((ti.task_id, ti.map_index), {})
        for key in sorted(values, key=lambda k: (XCOM_ORDER.index(k) if k in XCOM_ORDER else 0, k)):
            value = values[key]
            if key == "log" and isinstance(value, str):
                print("  log:")
                for line in value.splitlines():
                    print(f"    | {line}")
            else:
                print(f"  {key}: {json.dumps(value, ensure_ascii=False)}")


class QuietConsole:
    """
    While active, everything written to this process's stdout and stderr (Airflow's own start-up and
    task logs included, at the file-descriptor level) goes to ``log_path`` instead. With ``log_path``
    ``None`` nothing is redirected (``--verbose``).
    """

    def __init__(self, log_path: Path | None) -> None:
        self.log_path = log_path
        self._saved: list[int] = []

    def __enter__(self) -> QuietConsole:
        sys.stdout.flush()
        sys.stderr.flush()
        if self.log_path is not None:
            self._saved = [os.dup(1), os.dup(2)]
            target = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(target, 1)
            os.dup2(target, 2)
            os.close(target)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), self._saved, strict=False):  # nothing saved when verbose
            os.dup2(saved, fd)
            os.close(saved)
        self._saved = []

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines that were redirected."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def run(
    dag_ids: list[str] | None, run_conf: dict[str, Any] | None = None, *, verbose: bool = False
) -> dict[str, str]:
    """
    Run each DAG of ``dag_ids`` (``None``: every example DAG), one after the other, against one fresh
    emulator in one fresh Airflow home; return each run's final state by DAG id.

    :param verbose: also show Airflow's own output (start-up, task runner, task logs); by default it is
        kept out of the terminal and only its last lines are shown when a run did not succeed.
    """
    home = Path(tempfile.mkdtemp(prefix="fgs-demo-airflow-"))
    console = QuietConsole(None if verbose else home / "airflow-output.log")
    try:
        # Airflow reads its home and config when first imported: set the environment before that.
        os.environ.update(hermetic_airflow_env(home))
        with console:
            dags = load_dags(dag_ids)
            from airflow_provider_fgs.emulator import FunctionGraphEmulator

            emulator = FunctionGraphEmulator(functions_dir=FUNCTIONS)
        with emulator:
            connection = emulator_connection(emulator.url, emulator.region, emulator.project_id)
            for conn_id in connection_ids(dags):  # e.g. functiongraph_fan_out's own connection
                os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = connection
            print(f"FunctionGraph emulator at {emulator.url}, Airflow home {home}", flush=True)
            with console:
                migrate_db()
            states: dict[str, str] = {}
            for dag in dags:
                print(
                    f"Running DAG {dag.dag_id} with dag.test()"
                    + ("" if verbose else " (Airflow's output: --verbose)"),
                    flush=True,
                )
                with console:
                    dag_run = dag.test(run_conf=run_conf)
                print_report(dag.dag_id, dag_run)
                states[dag.dag_id] = str(dag_run.state)
                if states[dag.dag_id] != "success" and not verbose:
                    print(f"\nThe last lines of Airflow's output:\n{console.tail()}")
                print(flush=True)
            return states
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: 0 when the DAG run succeeded."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dag",
        action="append",
        help=f"id of an example DAG to run (default {DEFAULT_DAG_ID}); repeat it to run several",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="run every example DAG (functiongraph_failing fails on purpose, so the exit status is 1)",
    )
    parser.add_argument("--text", help="text for functiongraph_chain to split and count")
    parser.add_argument(
        "--verbose", action="store_true", help="also show Airflow's own start-up output and task logs"
    )
    args = parser.parse_args(argv)
    if args.all and args.dag:
        parser.error("--all runs every example DAG: give no --dag with it")
    dag_ids = None if args.all else (args.dag or [DEFAULT_DAG_ID])
    run_conf = {"text": args.text} if args.text else None
    try:
        states = run(dag_ids, run_conf, verbose=args.verbose)
    except LookupError as err:
        parser.error(str(err))
    return 0 if all(state == "success" for state in states.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
