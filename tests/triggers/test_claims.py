"""
The send claim when several runs of one trigger start at once (two triggerers running it during a
failover or a partition).

Such a race cannot be produced on demand in a real deployment (the restart tests of
tests/integration meet it only by chance), so these tests run the real claim and trigger code against
an in-memory stand-in for the triggerer's supervisor: it stores the XComs and lets every request of
every run interleave at random with the others' requests. The invocations go to the emulator over
loopback, whose handler counts its own runs.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from airflow_provider_fgs.protocol.errors import InvocationOutcomeUnknownError, error_from_event
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.triggers import claims, functiongraph
from airflow_provider_fgs.triggers.claims import CLAIM_XCOM_KEY, TaskTry, open_claim, take_claim, write_claim
from airflow_provider_fgs.triggers.functiongraph import FunctionGraphInvokeTrigger

pytestmark = pytest.mark.usefixtures("fgs_connection")

TASK_TRY = TaskTry(dag_id="d", run_id="r", task_id="invoke", map_index=-1, try_number=1)


@pytest.fixture
def quick_claims(monkeypatch: pytest.MonkeyPatch, emulator: Any, fgs_connection: None) -> None:
    """
    Claims a run holds for its answer's 0.6 s at most (connect and read timeouts of the connection),
    followed every 20 ms, stale 0.1 s past that; a claim without ``until`` is stale after 0.5 s.
    """
    monkeypatch.setattr(functiongraph, "FOLLOW_POLL_S", 0.02)
    monkeypatch.setattr(claims, "CLAIM_SLACK_S", 0.1)
    monkeypatch.setattr(claims, "CLAIM_STALE_AFTER_S", 0.5)
    quick_connection(monkeypatch, emulator)


def quick_connection(monkeypatch: pytest.MonkeyPatch, emulator: Any) -> None:
    """``functiongraph_default`` with a 0.1 s connect and a 0.5 s read timeout."""
    extra = {
        "region": emulator.region,
        "project_id": emulator.project_id,
        "endpoint": emulator.url,
        "connect_timeout": 0.1,
        "read_timeout": 0.5,
    }
    connection = {"conn_type": "functiongraph", "login": "DEMOACCESSKEY", "password": "demo-secret-key"}
    monkeypatch.setenv("AIRFLOW_CONN_FUNCTIONGRAPH_DEFAULT", json.dumps({**connection, "extra": extra}))


@pytest.mark.parametrize("runs", [1, 2, 3])
def test_at_most_one_of_concurrent_runs_takes_the_claim(supervisor: Any, runs: int) -> None:
    outcomes = []
    for seed in range(400):
        supervisor(seed)

        async def race() -> list[Any]:
            nonces = [f"run-{i}" for i in range(runs)]
            return await asyncio.gather(*(take_claim(TASK_TRY, nonce) for nonce in nonces))

        taken = asyncio.run(race())
        winners = [result for result in taken if result.claim is None]
        assert len(winners) <= 1, f"seed {seed}: {runs} runs, {len(winners)} took the claim"
        outcomes.append(len(winners))
    if runs == 1:
        assert set(outcomes) == {1}  # a run alone always gets through
    else:
        assert 1 in outcomes  # the race usually has a winner: the test does exercise both branches


def test_an_open_claim_written_by_the_worker_is_taken_like_no_claim(supervisor: Any) -> None:
    store = supervisor(0)
    store.xcoms[CLAIM_XCOM_KEY] = open_claim(TASK_TRY.try_number)
    taken = asyncio.run(take_claim(TASK_TRY, "run-0"))
    assert taken == claims.Taken(None)
    assert store.xcoms[CLAIM_XCOM_KEY]["state"] == "sent"


def test_a_claim_left_by_an_earlier_try_is_reported(supervisor: Any) -> None:
    store = supervisor(0)
    earlier = TaskTry(**{**TASK_TRY.to_dict(), "try_number": 1})
    later = TaskTry(**{**TASK_TRY.to_dict(), "try_number": 2})
    asyncio.run(write_claim(earlier, state="done", nonce="try-1", event={"status": "success"}))
    assert asyncio.run(take_claim(later, "run-0")) == claims.Taken(None, earlier_try=1)
    assert store.xcoms[CLAIM_XCOM_KEY]["try_number"] == 2


def invoke_trigger(emulator: Any) -> FunctionGraphInvokeTrigger:
    return FunctionGraphInvokeTrigger(
        functiongraph_conn_id="functiongraph_default",
        invocation=Invocation(function_urn=emulator.urn("square"), payload={"x": 5}).check().to_dict(),
        task_try=TASK_TRY.to_dict(),
    )


async def fire(trigger: FunctionGraphInvokeTrigger) -> dict[str, Any]:
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1
    payload: dict[str, Any] = events[0]
    return payload


@pytest.mark.usefixtures("quick_claims")
def test_two_runs_started_at_once_invoke_at_most_once_and_fire_one_outcome(
    emulator: Any, supervisor: Any
) -> None:
    sent = 0
    for seed in range(30):
        store = supervisor(seed)
        before = emulator.invocation_count("square")

        async def both() -> list[dict[str, Any]]:
            return await asyncio.gather(fire(invoke_trigger(emulator)), fire(invoke_trigger(emulator)))

        events = asyncio.run(both())
        invocations = emulator.invocation_count("square") - before
        assert invocations <= 1, f"seed {seed}: the function ran {invocations} times"
        if invocations == 1:  # the winner's outcome, fired by both runs
            sent += 1
            assert events[0] == events[1] == store.xcoms[CLAIM_XCOM_KEY]["event"]
            assert events[0]["status"] == "success"
        else:  # both lost the race: neither sent, both fail safe
            for event in events:
                assert isinstance(error_from_event(event["error"]), InvocationOutcomeUnknownError)
    assert sent > 0


@pytest.mark.usefixtures("quick_claims")
def test_a_follower_fires_the_outcome_the_sender_records_later(emulator: Any, supervisor: Any) -> None:
    supervisor(0)
    recorded = {"status": "success", "result": {"request_id": "from-the-other-run"}}
    before = emulator.invocation_count("square")

    async def scenario() -> dict[str, Any]:
        await write_claim(TASK_TRY, state="sent", nonce="other-run")
        follower = asyncio.ensure_future(fire(invoke_trigger(emulator)))
        for _ in range(10):  # the other run refreshes its claim while its request is in flight
            await asyncio.sleep(0.05)
            await write_claim(TASK_TRY, state="sent", nonce="other-run")
        assert not follower.done()
        await write_claim(TASK_TRY, state="done", nonce="other-run", event=recorded)
        return await follower

    assert asyncio.run(scenario()) == recorded
    assert emulator.invocation_count("square") == before


@pytest.mark.usefixtures("quick_claims")
def test_a_claim_is_live_until_its_run_may_no_longer_wait_for_the_answer() -> None:
    now = 1_000_000.0
    sent = {"state": "sent", "nonce": "n", "written_at": now - 300}
    assert claims.claim_is_live({**sent, "until": now + 60}, now)  # written long ago, its attempt not over
    assert claims.claim_is_live({**sent, "until": now - claims.CLAIM_SLACK_S + 1}, now)  # the clocks' slack
    assert not claims.claim_is_live({**sent, "until": now - claims.CLAIM_SLACK_S - 1}, now)
    assert not claims.claim_is_live({**sent, "until": now + 60, "state": "done"}, now)
    assert not claims.claim_is_live(sent, now)  # no until (an earlier version's): stale after 30 s


@pytest.mark.usefixtures("quick_claims")
def test_a_claim_no_longer_refreshed_fails_safe_without_invoking(emulator: Any, supervisor: Any) -> None:
    supervisor(0)
    before = emulator.invocation_count("square")

    async def scenario() -> tuple[dict[str, Any], float]:
        await write_claim(TASK_TRY, state="sent", nonce="gone-run")
        started = time.monotonic()
        event = await fire(invoke_trigger(emulator))
        return event, time.monotonic() - started

    event, waited = asyncio.run(scenario())
    assert isinstance(error_from_event(event["error"]), InvocationOutcomeUnknownError)
    assert waited >= 0.4  # it waited for the live claim to go stale
    assert emulator.invocation_count("square") == before


def test_a_retry_moves_the_claims_until_and_a_first_attempt_writes_nothing_more(
    emulator: Any, supervisor: Any
) -> None:
    """While its request is in flight a run writes nothing; each retry first renews the claim's ``until``."""
    store = supervisor(0)
    writes: list[float] = []
    original = store.asend

    async def recording(message: Any) -> Any:
        if type(message).__name__ == "SetXCom" and message.key == CLAIM_XCOM_KEY:
            writes.append(message.value.get("until"))
        return await original(message)

    store.asend = recording
    asyncio.run(fire(invoke_trigger(emulator)))
    assert len(writes) == 2  # taken (with until), then done
    assert writes[0] is not None
    writes.clear()
    emulator.inject_fault("throttle", count=2, function="square")
    try:
        store.xcoms.clear()
        event = asyncio.run(fire(invoke_trigger(emulator)))
    finally:
        emulator.clear_faults()
    assert event["status"] == "success"
    assert len(writes) == 4  # taken, renewed before each of the two retries, done
    assert writes[0] < writes[1] < writes[2]


def counted_sleep_trigger(emulator: Any, count_file: Any, seconds: float) -> FunctionGraphInvokeTrigger:
    payload = {"count_file": str(count_file), "seconds": seconds}
    return FunctionGraphInvokeTrigger(
        functiongraph_conn_id="functiongraph_default",
        invocation=Invocation(function_urn=emulator.urn("counted_sleep"), payload=payload).check().to_dict(),
        task_try=TASK_TRY.to_dict(),
    )


def runs_of(count_file: Any) -> int:
    return len(count_file.read_text().splitlines()) if count_file.exists() else 0


def cancel_after(store: Any, messages: int, task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` (the trigger's run) once the supervisor has answered ``messages`` of its requests."""
    original = store.asend
    answered = 0

    async def counting(message: Any) -> Any:
        nonlocal answered
        reply = await original(message)
        answered += 1
        if answered == messages:
            task.cancel()
        return reply

    store.asend = counting


# Taking the claim is four requests to the supervisor (announce, read, write, check); a cancellation
# during any of them finishes taking it first, then releases it.
@pytest.mark.usefixtures("quick_claims")
@pytest.mark.parametrize("messages", [1, 2, 3, 4])
def test_a_run_cancelled_before_sending_releases_its_claim_and_the_next_run_invokes(
    emulator: Any, supervisor: Any, tmp_path: Any, messages: int
) -> None:
    """A triggerer that loses the trigger (a missed heartbeat) cancels it: a run that never sent lets go."""
    store = supervisor(messages)
    count_file = tmp_path / "runs.txt"

    async def scenario() -> dict[str, Any]:
        cancelled = asyncio.ensure_future(fire(counted_sleep_trigger(emulator, count_file, 0)))
        cancel_after(store, messages, cancelled)
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert store.xcoms[CLAIM_XCOM_KEY]["state"] == "released"
        store.asend = type(store).asend.__get__(store)
        return await fire(counted_sleep_trigger(emulator, count_file, 0))

    started = time.monotonic()
    event = asyncio.run(scenario())
    assert event["status"] == "success", event
    assert runs_of(count_file) == 1
    assert time.monotonic() - started < 5  # no wait for a stale claim


@pytest.mark.usefixtures("quick_claims")
def test_a_run_cancelled_while_its_request_is_in_flight_keeps_its_claim(
    emulator: Any, supervisor: Any, tmp_path: Any
) -> None:
    """Once the request may be on its way, a cancelled run holds on: the next run fails safe."""
    store = supervisor(0)
    count_file = tmp_path / "runs.txt"

    async def scenario() -> dict[str, Any]:
        cancelled = asyncio.ensure_future(fire(counted_sleep_trigger(emulator, count_file, 0.3)))
        while not runs_of(count_file):  # the handler runs: the request was sent
            await asyncio.sleep(0.01)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert store.xcoms[CLAIM_XCOM_KEY]["state"] == "sent"
        return await fire(counted_sleep_trigger(emulator, count_file, 0))

    event = asyncio.run(scenario())
    assert isinstance(error_from_event(event["error"]), InvocationOutcomeUnknownError)
    assert runs_of(count_file) == 1


@pytest.mark.usefixtures("quick_claims")
def test_two_runs_at_once_one_cancelled_before_sending_invoke_at_most_once(
    emulator: Any, supervisor: Any, tmp_path: Any
) -> None:
    """The failover race: the run being cancelled and the run taking over take the claim at once."""
    took_over = 0
    for seed in range(30):
        store = supervisor(seed)
        count_file = tmp_path / f"runs-{seed}.txt"

        async def race(store: Any, count_file: Any, messages: int) -> dict[str, Any]:
            cancelled = asyncio.ensure_future(fire(counted_sleep_trigger(emulator, count_file, 0)))
            cancel_after(store, messages, cancelled)
            taking_over = asyncio.ensure_future(fire(counted_sleep_trigger(emulator, count_file, 0)))
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            return await taking_over

        event = asyncio.run(race(store, count_file, 1 + seed % 4))
        assert runs_of(count_file) <= 1, f"seed {seed}: the function ran {runs_of(count_file)} times"
        if runs_of(count_file) == 1:
            took_over += 1
            assert event["status"] == "success", f"seed {seed}: {event}"
        else:  # both lost the splitter: neither sent, the run taking over fails safe
            assert isinstance(error_from_event(event["error"]), InvocationOutcomeUnknownError)
    assert took_over > 0
