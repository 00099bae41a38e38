"""How the view shows a batch: from its summary once it ended, from its ledger while it runs."""

from __future__ import annotations

from types import SimpleNamespace

from airflow_provider_fgs.protocol import batch as b
from airflow_provider_fgs.ui.batches import _batch

ROW = SimpleNamespace(
    dag_id="d",
    task_id="t",
    run_id="r",
    map_index=-1,
    try_number=1,
    state="deferred",
    start_date=None,
    duration=None,
)


def test_a_running_batch_shows_the_ledgers_counts() -> None:
    tally = b.Tally(items=100, counts={b.SUCCESS: 40, b.FUNCTION_ERROR: 2})
    shown = _batch(ROW, {"status": "running", "try_number": 1}, {"tally": tally.to_dict(), "done": None})
    assert (shown["status"], shown["items"], shown["ended"]) == ("running", 100, 42)
    assert shown["counts"][b.NOT_STARTED] == 58
    assert shown["wall_seconds"] is None


def test_an_ended_batch_shows_its_summary() -> None:
    summary = {"status": "failed", "items": 10, "success": 7, "function_error": 3, "wall_seconds": 4.2}
    shown = _batch(SimpleNamespace(**{**vars(ROW), "state": "failed"}), summary, None)
    assert (shown["status"], shown["ended"], shown["counts"][b.FUNCTION_ERROR]) == ("failed", 10, 3)
    assert shown["wall_seconds"] == 4.2


def test_a_batch_not_started_yet_shows_no_counts() -> None:
    shown = _batch(SimpleNamespace(**{**vars(ROW), "state": "queued"}), None, None)
    assert (shown["status"], shown["items"], shown["ended"], shown["counts"]) == (None, None, None, {})
