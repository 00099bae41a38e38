"""
The BaseOperator features a user may set on an invocation, on each of its three paths: on a worker
(``worker``), deferred from a worker (``deferred``) and started in the triggerer (``started``). One DAG per
path, the same tasks in each; consumer DAGs scheduled on the assets they produce. docs/delivery-semantics.md
has the table these DAGs check, row by row (tests/integration/test_feature_audit.py).

Callbacks leave a mark file under ``$AIRFLOW_HOME/audit-marks`` (wherever Airflow runs them); the
``audited`` handler counts its own runs in files under the run's ``count_dir``.

On the deferred path each invocation takes a few seconds: a task that resumes on the worker it deferred
from can otherwise be failed by Airflow's scheduler when its trigger fires before the worker's exit is
reported (apache/airflow#67287, docs/delivery-semantics.md); the audit checks features, not that race.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetAlias, task

from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator

PATHS = {
    "worker": {},
    "deferred": {"deferrable": True},
    "started": {"deferrable": True, "start_from_trigger": True},
}
SECONDS = {"worker": 0, "deferred": 5, "started": 0}
COUNT_FILE = "{{ dag_run.conf['count_dir'] }}/{{ dag.dag_id }}-{{ task.task_id }}"


def event(path: str, **fields: Any) -> dict[str, Any]:
    """The event of an ``audited`` invocation on ``path``."""
    return {"seconds": SECONDS[path], **fields}


def mark(name: str) -> Any:
    """A callback that records it ran, for this run, in a file the test reads."""

    def callback(context: Any) -> None:
        marks = Path(os.environ["AIRFLOW_HOME"]) / "audit-marks"
        marks.mkdir(exist_ok=True)
        (marks / f"{context['dag'].dag_id}.{name}").write_text(context["run_id"], encoding="utf-8")

    return callback


def add_alias_event(path: str) -> Any:
    """A post_execute hook adding an asset event with an extra through the task's asset alias."""

    def post_execute(context: Any, result: Any = None) -> None:
        context["outlet_events"][AssetAlias(f"fgs-audit-{path}")].add(
            Asset(f"fgs://audit/{path}/via-alias"), extra={"path": path}
        )

    return post_execute


for path, mode in PATHS.items():
    with DAG(
        dag_id=f"functiongraph_audit_{path}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1),
        catchup=False,
        tags=["test", "audit"],
    ):
        InvokeFunctionOperator(
            task_id="produce",
            function_name="audited",
            payload=event(path),
            outlets=[Asset(f"fgs://audit/{path}/greeting"), AssetAlias(f"fgs-audit-{path}")],
            post_execute=add_alias_event(path),
            **mode,
        )
        InvokeFunctionOperator(
            task_id="succeed",
            function_name="audited",
            payload=event(path),
            on_success_callback=mark("succeed.success"),
            **mode,
        )
        InvokeFunctionOperator(
            task_id="with_inlets",
            function_name="audited",
            payload=event(path),
            inlets=[Asset("fgs://audit/input")],
            **mode,
        )
        InvokeFunctionOperator.partial(
            task_id="labelled",
            function_name="audited",
            map_index_template="x={{ task.payload['x'] }}",
            **mode,
        ).expand(payload=[event(path, x=2), event(path, x=3)])
        InvokeFunctionOperator(
            task_id="flaky",
            function_name="audited",
            payload=event(path, count_file=COUNT_FILE, fail="first"),
            retries=1,
            retry_delay=timedelta(seconds=1),
            on_retry_callback=mark("flaky.retry"),
            on_success_callback=mark("flaky.success"),
            **mode,
        )
        broken = InvokeFunctionOperator(
            task_id="broken",
            function_name="audited",
            payload=event(path, fail="always"),
            on_failure_callback=mark("broken.failure"),
            email=["ops@example.com"],
            email_on_failure=True,
            **mode,
        )

        @task(trigger_rule="all_done")
        def after_broken() -> str:
            return "ran"

        @task
        def only_after_success() -> str:
            return "ran"

        broken >> [after_broken(), only_after_success()]
        InvokeFunctionOperator(
            task_id="timed_out",
            function_name="audited",
            payload={"seconds": 20},
            execution_timeout=timedelta(seconds=5),
            **mode,
        )
        InvokeFunctionOperator(
            task_id="silent", function_name="audited", payload=event(path), do_xcom_push=False, **mode
        )
        if path != "started":  # refused when parsed: a task started in the triggerer is never queued
            InvokeFunctionOperator.partial(
                task_id="limited", function_name="audited", max_active_tis_per_dag=1, **mode
            ).expand(payload=[{"count_file": COUNT_FILE, "seconds": 2, "x": x} for x in range(3)])
            InvokeFunctionOperator(
                task_id="pooled",
                function_name="audited",
                payload=event(path),
                pool="fgs_audit",
                priority_weight=5,
                **mode,
            )

    for asset in (f"fgs://audit/{path}/greeting", f"fgs://audit/{path}/via-alias"):
        with DAG(
            dag_id=f"functiongraph_audit_consumer_{path}_{asset.rsplit('/', 1)[1]}",
            schedule=[Asset(asset)],
            start_date=pendulum.datetime(2026, 1, 1),
            catchup=False,
            tags=["test", "audit"],
        ):

            @task
            def consume(triggering_asset_events: Any = None) -> list[Any]:
                return [event.extra for events in triggering_asset_events.values() for event in events]

            consume()
