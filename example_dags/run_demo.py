"""
Run an example DAG end to end against the local FunctionGraph emulator, then print its XCom results.

    python example_dags/run_demo.py                       # the functiongraph_chain pipeline
    python example_dags/run_demo.py --dag functiongraph_mapped
    python example_dags/run_demo.py --text "to be or not to be"

Everything is hermetic: Airflow's home (config, sqlite metadata DB) is a temporary directory that is
removed afterwards, the emulator listens on a free loopback port and runs the handlers in
``example_dags/functions``, and the ``functiongraph_default`` connection comes from the
``AIRFLOW_CONN_FUNCTIONGRAPH_DEFAULT`` environment variable. The DAG runs with Airflow's own
``dag.test()``: the real scheduler logic, task runner and XCom backend, in this one process.
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


def migrate_db() -> None:
    """Create the metadata DB schema, as ``airflow db migrate`` does."""
    from airflow.utils.db import upgradedb

    upgradedb()


def load_dag(dag_id: str) -> Any:
    """Parse the example DAGs folder and return ``dag_id``."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    if bag.import_errors:
        raise RuntimeError(f"Example DAGs failed to import: {bag.import_errors}")
    dag = bag.dags.get(dag_id)
    if dag is None:
        raise LookupError(f"no DAG {dag_id!r} in {EXAMPLE_DAGS}; known: {', '.join(sorted(bag.dag_ids))}")
    return dag


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


def run(dag_id: str, run_conf: dict[str, Any] | None = None) -> str:
    """Run ``dag_id`` against a fresh emulator in a fresh Airflow home; return the run's final state."""
    home = Path(tempfile.mkdtemp(prefix="fgs-demo-airflow-"))
    try:
        # Airflow reads its home and config when first imported: set the environment before that.
        os.environ.update(hermetic_airflow_env(home))
        dag = load_dag(dag_id)
        from airflow_provider_fgs.emulator import FunctionGraphEmulator

        with FunctionGraphEmulator(functions_dir=FUNCTIONS) as emulator:
            os.environ[CONN_ENV] = emulator_connection(emulator.url, emulator.region, emulator.project_id)
            print(f"FunctionGraph emulator at {emulator.url}, Airflow home {home}")
            migrate_db()
            dag_run = dag.test(run_conf=run_conf)
            print_report(dag_id, dag_run)
            return str(dag_run.state)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: 0 when the DAG run succeeded."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dag", default=DEFAULT_DAG_ID, help=f"id of an example DAG to run (default {DEFAULT_DAG_ID})"
    )
    parser.add_argument("--text", help="text for functiongraph_chain to split and count")
    args = parser.parse_args(argv)
    run_conf = {"text": args.text} if args.text else None
    try:
        state = run(args.dag, run_conf)
    except LookupError as err:
        parser.error(str(err))
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
