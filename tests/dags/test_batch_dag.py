"""The batch operator with Airflow's real ``dag.test()`` against the emulator: the example DAG (deferred,
one trigger for the whole batch), the worker path, a path source with a results file, and a retry that
resumes instead of invoking again. The handlers count their own runs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.dags.dagrun import run_dag, states, xcoms

pytestmark = pytest.mark.usefixtures("emulator_connection")


def test_the_example_batch_squares_every_number_once_in_one_deferred_task(
    example_dag_bag: Any, emulator: Any
) -> None:
    before = emulator.invocation_count("square")

    run = run_dag(example_dag_bag, "functiongraph_batch", run_conf={"count": 120})

    assert states(run) == {"numbers": "success", "square_all": "success", "report": "success"}
    assert emulator.invocation_count("square") == before + 120
    pushed = xcoms(run)
    assert pushed["square_all"]["return_value"] == [{"x": x, "square": x * x} for x in range(1, 121)]
    summary = pushed["square_all"]["summary"]
    assert {key: summary[key] for key in ("items", "success", "function_error", "not_started")} == {
        "items": 120,
        "success": 120,
        "function_error": 0,
        "not_started": 0,
    }
    assert pushed["square_all"]["failures"] == {"items": [], "more": 0}
    assert pushed["report"]["return_value"] == {
        "succeeded": 120,
        "sum_of_squares": sum(x * x for x in range(1, 121)),
    }
    assert not _ledger_variables()  # removed once the batch succeeded


def _ledger_variables() -> list[str]:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        keys = session.scalars(select(Variable.key)).all()
    return [key for key in keys if key.startswith("functiongraph.batch.")]


def stored(dag: Any) -> Any:
    from airflow_provider_fgs.compat import store_dag

    store_dag(dag)
    return dag


def runs_per_item(count_file: Path) -> Counter[int]:
    return Counter(int(line) for line in count_file.read_text().split()) if count_file.exists() else Counter()


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_a_file_of_payloads_gives_a_file_of_results_and_a_summary(tmp_path: Path, deferrable: bool) -> None:
    from airflow.sdk import DAG

    from airflow_provider_fgs.operators.batch import InvokeFunctionBatchOperator
    from airflow_provider_fgs.protocol.invocation import Invocation

    count_file = tmp_path / "runs"
    payloads = tmp_path / "payloads.jsonl"
    payloads.write_text(
        "".join(json.dumps({"index": i, "count_file": str(count_file)}) + "\n" for i in range(40))
    )
    results = tmp_path / "results.jsonl"
    with DAG(f"batch_files_{deferrable}", schedule=None) as dag:
        InvokeFunctionBatchOperator(
            task_id="batch",
            invocation=Invocation(function_name="batch_item", log_type=None),
            payloads_path=str(payloads),
            results_path=str(results),
            max_concurrency=8,
            deferrable=deferrable,
        )

    run = stored(dag).test()

    assert states(run) == {"batch": "success"}
    assert runs_per_item(count_file) == Counter(range(40))
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(line["index"] for line in lines) == list(range(40))
    assert all(
        line["outcome"] == "success" and line["result"]["doubled"] == 2 * line["index"] for line in lines
    )
    pushed = xcoms(run)["batch"]
    assert pushed["return_value"]["success"] == 40
    assert pushed["return_value"]["results_path"] == str(results)
    assert pushed["summary"]["success"] == 40


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotent", "once"])
def test_a_retry_resumes_the_batch_and_invokes_again_only_what_it_may(
    tmp_path: Path, idempotent: bool
) -> None:
    from datetime import timedelta

    from airflow.sdk import DAG

    from airflow_provider_fgs.operators.batch import InvokeFunctionBatchOperator
    from airflow_provider_fgs.protocol.invocation import Invocation

    count_file = tmp_path / "runs"
    # Items 0 and 1 fail on their first run, and last longer than the others: both have started, and a few
    # others have ended, when the first failure stops the batch.
    items = [{"index": i, "count_file": str(count_file), "seconds": 0.2} for i in range(12)]
    for item in items[:2]:
        item.update(fail_first=True, seconds=0.5)
    with DAG(f"batch_retry_{idempotent}", schedule=None) as dag:
        InvokeFunctionBatchOperator(
            task_id="batch",
            invocation=Invocation(function_name="batch_item", log_type=None),
            payloads=items,
            max_concurrency=3,
            idempotent=idempotent,
            retries=1,
            retry_delay=timedelta(seconds=0),
        )

    run = stored(dag).test()

    runs = runs_per_item(count_file)
    if idempotent:  # the second try invoked the two failed items again, and the ones not started
        assert states(run) == {"batch": "success"}
        assert runs == Counter({**dict.fromkeys(range(12), 1), 0: 2, 1: 2})
        assert xcoms(run)["batch"]["return_value"] == [{"index": i, "doubled": 2 * i} for i in range(12)]
    else:  # the function ran for items 0 and 1: the retry runs the rest, not them, and fails on them again
        assert states(run) == {"batch": "failed"}
        assert runs == Counter(range(12))
        summary = xcoms(run)["batch"]["summary"]
        assert (summary["try_number"], summary["success"], summary["function_error"]) == (2, 10, 2)
        assert 0 < summary["invoked"] < 12
