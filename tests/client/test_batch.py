"""The batch engine against the emulator over loopback: order, at most once per item, the ledger's
claims and checkpoints, resuming after a run that died, failure policy, throttling. The handler counts
its own runs of each item in a file."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_provider_fgs.client import batch_ledger
from airflow_provider_fgs.client.async_client import AsyncFunctionGraphClient
from airflow_provider_fgs.client.batch import BatchRun
from airflow_provider_fgs.client.batch_io import BatchOptions, ListSource
from airflow_provider_fgs.client.settings import parse_connection
from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.protocol import batch as b
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.protocol.result_check import ResultCheck
from tests.connections import DEMO_KEY, emulator_extra

LOG = logging.getLogger("tests.batch")


class MemoryStore:
    """The ledger's records in memory, as JSON (what Airflow Variables hold), counting the writes."""

    def __init__(self) -> None:
        self.records: dict[str, Any] = {}
        self.puts: Counter[str] = Counter()

    async def get(self, name: str) -> Any:
        return copy.deepcopy(self.records.get(name))

    async def put(self, name: str, value: Any) -> None:
        self.records[name] = json.loads(json.dumps(value))
        self.puts[name.split(".")[0]] += 1

    async def delete(self, name: str) -> None:
        self.records.pop(name, None)

    def where(self) -> str:
        return "memory"


def client_of(emulator: FunctionGraphEmulator, **extra: Any) -> AsyncFunctionGraphClient:
    extras = emulator_extra(emulator, retry_min_wait=0.05, retry_max_wait=0.2, **extra)
    conn = Connection(
        conn_id="batch_test",
        conn_type="functiongraph",
        login=DEMO_KEY[0],
        password=DEMO_KEY[1],
        extra=json.dumps(extras),
    )
    return AsyncFunctionGraphClient(parse_connection(conn))


def payloads(count_file: Path, items: int, **more: Any) -> list[dict[str, Any]]:
    return [{"index": i, "count_file": str(count_file), **more} for i in range(items)]


def runs_per_item(count_file: Path) -> Counter[int]:
    return Counter(int(line) for line in count_file.read_text().split()) if count_file.exists() else Counter()


def invocation(emulator: FunctionGraphEmulator, function: str = "batch_item") -> Invocation:
    return Invocation(function_urn=emulator.urn(function), log_type=None)


async def run_batch(
    emulator: FunctionGraphEmulator,
    source: ListSource,
    store: MemoryStore,
    *,
    try_number: int = 1,
    **options: Any,
) -> Any:
    policy = b.FailurePolicy(options.pop("max_failed_items", None), options.pop("max_failed_ratio", None))
    async with client_of(emulator) as client:
        run = BatchRun(
            client,
            invocation(emulator),
            source,
            store,
            try_number=try_number,
            options=BatchOptions(policy=policy, **options),
            logger=LOG,
        )
        return await run.run()


def test_every_item_runs_once_and_results_come_back_in_input_order(
    emu: FunctionGraphEmulator, tmp_path: Path
) -> None:
    count_file = tmp_path / "runs"
    store = MemoryStore()
    source = ListSource(payloads(count_file, 300, seconds=0.05))

    report = asyncio.run(run_batch(emu, source, store, max_concurrency=40))

    assert report.status == "success", report.message
    assert report.results == [{"index": i, "doubled": 2 * i} for i in range(300)]
    assert runs_per_item(count_file) == Counter(range(300))
    assert report.summary[b.SUCCESS] == 300
    assert report.summary[b.NOT_STARTED] == 0
    assert report.summary["invoked"] == 300
    # One claim per half window of items (and a few timed checkpoints), never one per item.
    assert 300 / 20 <= store.puts["ledger"] <= 300 / 20 + 6
    ledger = store.records["ledger"]
    assert ledger["done"]["status"] == "success"
    assert bytes(b.decode_states(ledger["states"], 300)) == b"s" * 300


def test_a_run_that_died_leaves_its_claimed_items_unknown_and_the_next_one_never_reruns_them(
    emu: FunctionGraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_ledger, "LEASE_S", 1.0)
    monkeypatch.setattr(batch_ledger, "LEASE_SLACK_S", 0.5)
    count_file = tmp_path / "runs"
    store = MemoryStore()
    source = ListSource(payloads(count_file, 200, seconds=0.3))

    async def die_midway() -> None:
        batch = asyncio.ensure_future(run_batch(emu, source, store, max_concurrency=20))
        while len(runs_per_item(count_file)) < 60:
            await asyncio.sleep(0.05)
        batch.cancel()  # the process dies: nothing more is written
        with pytest.raises(asyncio.CancelledError):
            await batch

    asyncio.run(die_midway())
    first = runs_per_item(count_file)
    report = asyncio.run(run_batch(emu, source, store, max_concurrency=20, max_failed_ratio=1.0))

    runs = runs_per_item(count_file)
    assert max(runs.values()) == 1, "an item ran twice"
    unknown = report.summary[b.OUTCOME_UNKNOWN]
    assert 0 < unknown <= 2 * 20  # at most the in-flight window and the block claimed after it
    assert report.summary[b.SUCCESS] + unknown == 200
    assert set(runs) - set(first) == {
        i for i, result in enumerate(report.results) if result and i not in first
    }


def test_an_idempotent_function_reruns_what_may_have_run(
    emu: FunctionGraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count_file = tmp_path / "runs"
    store = MemoryStore()
    source = ListSource(payloads(count_file, 50))
    ledger = batch_ledger.Ledger(50, emu.urn("batch_item"), source.fingerprint, try_number=1)
    ledger.states[:10] = b"?" * 10  # claimed by a run that stopped, its lease long gone
    store.records["ledger"] = {**ledger.record(), "lease_until": 0, "owner": "gone"}

    report = asyncio.run(run_batch(emu, source, store, max_concurrency=10, idempotent=True))

    assert report.status == "success"
    assert runs_per_item(count_file) == Counter(range(50))


def test_a_new_try_invokes_what_never_ran_but_not_what_failed_in_the_function(
    emu: FunctionGraphEmulator, tmp_path: Path
) -> None:
    count_file = tmp_path / "runs"
    store = MemoryStore()
    items = payloads(count_file, 30)
    items[3]["fail"] = True
    items[7]["fail"] = True
    source = ListSource(items)

    first = asyncio.run(run_batch(emu, source, store, max_concurrency=5, max_failed_items=5))
    assert first.status == "success"  # two failed items are tolerated
    assert first.summary[b.FUNCTION_ERROR] == 2
    assert [item["index"] for item in first.failures["items"]] == [3, 7]
    assert first.failures["items"][0]["error"]["code"] not in (None, "0")

    second = asyncio.run(run_batch(emu, source, store, try_number=2, max_concurrency=5))
    assert second.status == "failed"  # the default policy tolerates no failure: the two still count
    assert second.summary["invoked"] == 0  # everything else succeeded in the first try
    assert runs_per_item(count_file) == Counter(range(30))


def test_the_first_failure_stops_new_items_and_the_task_fails_once_those_in_flight_end(
    emu: FunctionGraphEmulator, tmp_path: Path
) -> None:
    count_file = tmp_path / "runs"
    items = payloads(count_file, 100, seconds=0.1)
    items[0]["fail"] = True
    report = asyncio.run(run_batch(emu, ListSource(items), MemoryStore(), max_concurrency=5))

    assert report.status == "failed"
    assert report.summary[b.FUNCTION_ERROR] == 1
    assert report.summary[b.NOT_STARTED] >= 80
    assert sum(runs_per_item(count_file).values()) == report.summary["invoked"] < 20


def test_a_result_check_fails_the_items_whose_result_says_so(
    emu: FunctionGraphEmulator, tmp_path: Path
) -> None:
    count_file = tmp_path / "runs"
    report = asyncio.run(
        run_batch(
            emu,
            ListSource(payloads(count_file, 4)),
            MemoryStore(),
            result_check=ResultCheck(("$.doubled", 2)),
            max_failed_ratio=1.0,
        )
    )
    assert report.summary[b.SUCCESS] == 1
    assert report.summary[b.FUNCTION_ERROR] == 3
    assert report.results == [None, {"index": 1, "doubled": 2}, None, None]
    assert {item["error"]["code"] for item in report.failures["items"]} == {"result_check"}


def test_throttling_halves_the_calls_in_flight_and_every_item_still_runs_once(
    fresh_emulator: FunctionGraphEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    count_file = tmp_path / "runs"
    fresh_emulator.inject_fault("throttle", count=10, function="batch_item", route="invoke")
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        report = asyncio.run(
            run_batch(
                fresh_emulator,
                ListSource(payloads(count_file, 60, seconds=0.05)),
                MemoryStore(),
                max_concurrency=16,
            )
        )
    assert report.status == "success"
    assert runs_per_item(count_file) == Counter(range(60))
    assert any("backing off from 16 to 8 calls in flight" in record.getMessage() for record in caplog.records)
