"""The batch engine: one function invoked for many payloads on one event loop, at most once per item.

A :class:`BatchRun` keeps up to ``max_concurrency`` calls in flight through one async client (one token,
one connection pool), shrinks that number when the platform throttles (:mod:`.concurrency`), records
each item's outcome in the ledger (:mod:`.batch_ledger`) at checkpoints, and reports progress. Where the
payloads come from and where results and the ledger go are given to it: the trigger and the operator
give Airflow's object storage and Variables, tests give memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from airflow_provider_fgs.client import batch_ledger
from airflow_provider_fgs.client.async_client import AsyncFunctionGraphClient
from airflow_provider_fgs.client.batch_io import BatchOptions, BatchReport, PayloadSource, ResultSink
from airflow_provider_fgs.client.batch_ledger import (
    CONTENDER,
    LEDGER,
    BatchStore,
    Ledger,
    LostOwnershipError,
    lease_is_live,
    results_chunk,
    take_over,
)
from airflow_provider_fgs.client.calls import PreparedCall
from airflow_provider_fgs.client.concurrency import AdaptiveLimit, Log
from airflow_provider_fgs.client.retry import TransportError
from airflow_provider_fgs.protocol import batch as b
from airflow_provider_fgs.protocol.errors import (
    AuthenticationError,
    FunctionGraphApiError,
    FunctionGraphError,
    InvalidRequestError,
    NotFoundError,
    PermanentError,
    ThrottledError,
)
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.protocol.invoke import InvocationResult, encode_payload

FOLLOW_S = 5.0
"""How often a run that waits for another run's lease reads the ledger again."""
RESULTS_CHUNK_ITEMS = 5000
"""The most results in one results chunk record."""


class BatchRun:
    """
    One run of a batch: take the batch over (or follow the run that holds it), invoke what is left, end.

    :param client: the async client (its connection's credentials, retries and cool-downs apply).
    :param invocation: the invocation of every item, its function named by its URN (payload unused).
    :param source: the payloads.
    :param store: where the ledger is kept.
    :param try_number: the task try running the batch.
    :param options: how the batch runs.
    :param sink: where results go (``results_path``); ``None`` keeps them for ``return_value``.
    :param logger: the task's (or the trigger's) logger.
    """

    def __init__(
        self,
        client: AsyncFunctionGraphClient,
        invocation: Invocation,
        source: PayloadSource,
        store: BatchStore,
        *,
        try_number: int,
        options: BatchOptions,
        sink: ResultSink | None = None,
        logger: Log,
    ) -> None:
        self.client = client
        self.invocation = invocation.check()
        self.source = source
        self.store = store
        self.try_number = try_number
        self.options = options
        self.sink = sink
        self.log = logger
        self.function = str(invocation.function_urn)
        self.ledger = Ledger(source.items, self.function, source.fingerprint, try_number)
        self._results: dict[int, Any] = {}
        self._unsaved_results: dict[int, Any] = {}
        self._unsaved_lines: list[dict[str, Any]] = []
        self._failures: list[b.ItemOutcome] = []
        self._claimed: deque[tuple[int, Any]] = deque()
        self._pending: AsyncIterator[tuple[int, Any]] | None = None
        self._claiming: asyncio.Task[None] | None = None
        self._checkpointing = asyncio.Lock()
        self._exhausted = False
        self._stopping: str | None = None
        self._fatal: FunctionGraphError | None = None
        self._invoked = 0
        self._failed_here = 0
        self._written_at = time.monotonic()
        self._template: PreparedCall[InvocationResult] | None = None
        self._limit = AdaptiveLimit(options.max_concurrency, logger)
        # Items are claimed half a window at a time, the next half claimed while the last is being started:
        # the ledger then never says more than 2 x max_concurrency items may be running.
        self._block = max(1, options.max_concurrency // 2)
        self._started = time.monotonic()

    # -- the whole run -------------------------------------------------------------------------------

    async def run(self) -> BatchReport:
        """Run the batch to its end (or follow the run that holds it) and report how it ended."""
        ended = await self._own_or_follow()
        if ended is not None:
            return ended
        if self.sink is not None:
            await self._begin_sink()
        else:
            await self._load_results()
        if any(state == b.NOT_STARTED_STATE for state in self.ledger.states):
            await self._invoke_the_rest()
        return await self._end()

    async def forget(self) -> None:
        """Remove the ledger and its results chunks (once the task recorded the batch's success)."""
        for number in range(self.ledger.chunks):
            await self.store.delete(results_chunk(number))
        await self.store.delete(CONTENDER)
        await self.store.delete(LEDGER)

    @property
    def _tally(self) -> b.Tally:
        assert self.ledger.tally is not None
        return self.ledger.tally

    # -- taking the batch over -------------------------------------------------------------------------

    async def _own_or_follow(self) -> BatchReport | None:
        """Become the batch's owner, resuming an earlier run's ledger; a report when it ended already."""
        waiting = False
        while True:
            record = await self.store.get(LEDGER)
            if not isinstance(record, dict):
                record = None
            elif record.get("done") is not None and record.get("try_number") == self.try_number:
                return self._recorded_report(record["done"])
            elif record.get("fingerprint") != self.source.fingerprint:
                self.log.warning(
                    "The ledger at %s is of another input (the payloads changed since): starting afresh",
                    self.store.where(),
                )
                record = None
            elif lease_is_live(record) and record.get("owner") != self.ledger.owner:
                if not waiting:
                    self.log.info("Another run of this batch holds it: waiting for it to end or stop")
                    waiting = True
                await asyncio.sleep(FOLLOW_S)
                continue
            unknown = 0
            if record is not None:
                owner = self.ledger.owner
                self.ledger, unknown = Ledger.resumed(
                    record, try_number=self.try_number, idempotent=self.options.idempotent
                )
                self.ledger.owner = owner
            if not await take_over(self.store, self.ledger):
                waiting = True
                continue
            self._say_resumed(record, unknown)
            return None

    def _say_resumed(self, record: Any, unknown: int) -> None:
        items = self.ledger.items
        self.log.info(
            "Invoking %s for %d item(s), at most %d at a time; ledger: %s",
            self.function,
            items,
            self.options.max_concurrency,
            self.store.where(),
        )
        if not isinstance(record, dict):
            return
        tally = self._tally
        self.log.info(
            "Resuming the batch: %d item(s) ended in earlier runs (%d succeeded, %d failed)",
            tally.ended,
            tally.counts.get(b.SUCCESS, 0),
            tally.failed,
        )
        if unknown:
            self.log.warning(
                "%d item(s) may have run when the earlier run stopped: their outcome is unknown and they are "
                "not invoked again (set idempotent=True for a function that may run twice)",
                unknown,
            )

    def _recorded_report(self, done: dict[str, Any]) -> BatchReport:
        """The report of a batch that another run of this try ended (it fires the same end)."""
        message = str(done.get("message") or "ended in another run")
        self.log.info("This batch already ended in another run of this try: %s", message)
        return BatchReport(
            status=str(done.get("status") or "error"),
            summary=dict(done.get("summary") or {}),
            failures=dict(done.get("failures") or {"items": [], "more": 0}),
            results=None,
            message=message,
            recorded=True,
        )

    # -- invoking --------------------------------------------------------------------------------------

    async def _invoke_the_rest(self) -> None:
        try:
            _, self._template = await self.client.aprepare_invoke(self.invocation)
        except FunctionGraphError as err:  # every item would fail alike (its config, a token, its name)
            self._stop(f"{type(err).__name__}: {err}", err)
            return
        self._pending = self.source.payloads(lambda index: self.ledger.states[index] == b.NOT_STARTED_STATE)
        workers = [asyncio.create_task(self._worker()) for _ in range(self.options.max_concurrency)]
        ticker = asyncio.create_task(self._tick())
        try:
            await asyncio.gather(*workers)
        finally:
            ticker.cancel()
            for worker in workers:
                worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _worker(self) -> None:
        while True:
            item = await self._next_item()
            if item is None:
                return
            index, payload = item
            async with self._limit:
                if self._stopping is not None:  # claimed, never sent: may be invoked later
                    self.ledger.states[index] = b.NOT_STARTED_STATE
                    continue
                self._invoked += 1
                outcome, throttled = await self._invoke(index, payload)
            self._ended(outcome)
            if not throttled:
                await self._limit.calm_answer()

    async def _invoke(self, index: int, payload: Any) -> tuple[b.ItemOutcome, bool]:
        """Invoke one item: its outcome, and whether the platform throttled it on the way."""
        template = self._template
        assert template is not None
        try:
            body = encode_payload(payload)
        except InvalidRequestError as err:
            outcome = b.ItemOutcome(index, b.PLATFORM_ERROR, message=str(err), state=b.NOT_RUN_PLATFORM_ERROR)
            return outcome, False
        call = replace(template, request=replace(template.request, body=body))
        throttled = False

        async def before_retry(error: BaseException | None) -> None:
            nonlocal throttled
            if isinstance(error, ThrottledError):
                throttled = True
                self._limit.throttled_answer(error.error_code or f"HTTP {error.http_status}")

        try:
            result = await self.client.asend(call, before_retry=before_retry)
        except FunctionGraphError as err:
            return self._refused(index, err), throttled or isinstance(err, ThrottledError)
        except Exception as err:  # a failure of our own: the request may have been sent
            self.log.exception("Invoking item %d failed unexpectedly", index)
            outcome = b.ItemOutcome(
                index,
                b.PLATFORM_ERROR,
                error_code=type(err).__name__,
                message=str(err),
                state=b.MAY_HAVE_RUN_PLATFORM_ERROR,
            )
            return outcome, throttled
        return self._answered(index, result), throttled

    def _answered(self, index: int, result: InvocationResult) -> b.ItemOutcome:
        """The outcome of a call the function answered: success, or its failure (or a failed check)."""
        memory = result.summary.get("memorySize")
        answered = b.ItemOutcome(
            index,
            b.SUCCESS,
            request_id=result.request_id,
            result=result.result,
            billed_ms=result.billing_duration_ms,
            memory_mb=float(memory) if isinstance(memory, int | float) else None,
            state=b.STATE_OF[b.SUCCESS],
        )
        check = self.options.result_check
        if result.is_function_error:
            detail = ": ".join(part for part in (result.error_type, result.error_message) if part)
            code, message = result.function_error_code or "unknown", detail or result.raw_result[:300]
        elif check is not None and (reason := check.failure(result.result)) is not None:
            code, message = "result_check", f"result check {check.name} failed: {reason}"
        else:
            return answered
        failed = b.STATE_OF[b.FUNCTION_ERROR]
        return replace(
            answered, outcome=b.FUNCTION_ERROR, result=None, error_code=code, message=message, state=failed
        )

    def _refused(self, index: int, err: FunctionGraphError) -> b.ItemOutcome:
        """The outcome of a call the platform refused, or whose answer never came."""
        never_ran = isinstance(err, ThrottledError | PermanentError) or (
            isinstance(err, TransportError) and err.request_sent is False
        )
        if isinstance(err, AuthenticationError | NotFoundError):  # every other item would fail alike
            self._stop(f"{type(err).__name__}: {err}", err)
        code = err.error_code if isinstance(err, FunctionGraphApiError) else None
        state = b.NOT_RUN_PLATFORM_ERROR if never_ran else b.MAY_HAVE_RUN_PLATFORM_ERROR
        return b.ItemOutcome(index, b.PLATFORM_ERROR, error_code=code, message=str(err), state=state)

    def _ended(self, outcome: b.ItemOutcome) -> None:
        self.ledger.states[outcome.index] = outcome.state
        self._tally.add(outcome)
        if outcome.outcome == b.SUCCESS:
            if self.sink is None:
                self._results[outcome.index] = outcome.result
                self._unsaved_results[outcome.index] = outcome.result
        elif len(self._failures) < self.options.failures_listed:
            self._failures.append(outcome)
        if self.sink is not None:
            self._unsaved_lines.append(outcome.line())
        if outcome.outcome == b.SUCCESS:
            return
        # A run stops on its own failures; earlier runs' count at the end (a retry finishes the rest).
        self._failed_here += 1
        policy, items = self.options.policy, self.ledger.items
        if self._stopping is None and policy.exceeded_by(self._failed_here, items):
            self._stop(f"{self._failed_here} item(s) failed: more than {policy.describe(items)}")

    def _stop(self, why: str, error: FunctionGraphError | None = None) -> None:
        """Start no more items (the ones in flight end as they do)."""
        if self._stopping is not None:
            return
        self._stopping = why
        self._fatal = error
        self.log.warning("Stopping the batch: %s; the calls in flight end first", why)

    async def _next_item(self) -> tuple[int, Any] | None:
        """The next claimed item to invoke; claims the next block when few claimed ones are left."""
        while True:
            if self._stopping is not None and not self._claimed:
                return None
            if self._claimed:
                item = self._claimed.popleft()
                if len(self._claimed) <= self._block:
                    self._claim_soon()
                return item
            if self._exhausted:
                return None
            self._claim_soon()
            claiming = self._claiming
            assert claiming is not None
            await asyncio.shield(claiming)

    def _claim_soon(self) -> None:
        if self._exhausted or self._stopping is not None:
            return
        if self._claiming is None or self._claiming.done():
            self._claiming = asyncio.create_task(self._claim_block())

    async def _claim_block(self) -> None:
        """Claim the next half window of items (one checkpoint), so that they may be invoked."""
        assert self._pending is not None
        block: list[tuple[int, Any]] = []
        while len(block) < self._block:
            item = await anext(self._pending, None)
            if item is None:
                self._exhausted = True
                break
            block.append(item)
        if not block:
            return
        for index, _ in block:
            self.ledger.states[index] = b.CLAIMED_STATE
        try:
            await self._checkpoint()
        except Exception as err:
            for index, _ in block:
                self.ledger.states[index] = b.NOT_STARTED_STATE
            self._stop(f"the ledger could not be written ({type(err).__name__}: {err})")
            return
        self._claimed.extend(block)

    # -- checkpoints and progress ------------------------------------------------------------------------

    async def _tick(self) -> None:
        last_progress = time.monotonic()
        last_checkpoint = time.monotonic()
        while True:
            await asyncio.sleep(min(1.0, self.options.checkpoint_s))
            now = time.monotonic()
            if now - last_checkpoint >= self.options.checkpoint_s:
                last_checkpoint = now
                try:
                    await self._checkpoint(chunk=True)
                except LostOwnershipError as err:
                    self._stop(str(err))
                except Exception:
                    self.log.warning("Could not write the batch's checkpoint; trying again", exc_info=True)
            if now - last_progress >= self.options.progress_s:
                last_progress = now
                self._log_progress()

    async def _checkpoint(self, *, chunk: bool = False) -> None:
        """
        Record what ended since the last checkpoint: its results first, then the ledger. Recent results ride
        in the ledger record itself; every few seconds (``chunk``), or once there are many, they move into a
        results chunk of their own. Raises :class:`LostOwnershipError` when another run took the batch over.
        """
        async with self._checkpointing:
            if time.monotonic() - self._written_at >= batch_ledger.LEASE_S / 3:  # our lease may have lapsed
                await self._check_ownership()
            recent = self.ledger.recent
            recent.update(self._unsaved_results)
            self._unsaved_results = {}
            lines, self._unsaved_lines = self._unsaved_lines, []
            record = self.ledger.record()  # the states now: every ended item's result is in hand
            try:
                if lines and self.sink is not None:
                    await self.sink.write(lines)
                if recent and (chunk or len(recent) >= RESULTS_CHUNK_ITEMS):
                    await self.store.put(
                        results_chunk(self.ledger.chunks), {str(k): v for k, v in recent.items()}
                    )
                    self.ledger.chunks += 1
                    recent.clear()
                    record.update(chunks=self.ledger.chunks, recent={})
            except BaseException:
                self._unsaved_lines = lines + self._unsaved_lines
                raise
            await self.store.put(LEDGER, record)
            self._written_at = time.monotonic()

    async def _check_ownership(self) -> None:
        current = await self.store.get(LEDGER)
        if isinstance(current, dict) and current.get("owner") != self.ledger.owner:
            raise LostOwnershipError(
                f"another run took the batch over (the ledger at {self.store.where()} names another)"
            )

    def _log_progress(self) -> None:
        tally = self._tally
        elapsed = max(time.monotonic() - self._started, 1e-3)
        rate = self._invoked / elapsed
        left = tally.items - tally.ended
        eta = f"about {left / rate:.0f} s left" if rate > 0 and left else "nothing left to start"
        self.log.info(
            "Batch progress: %d of %d item(s) ended (%d succeeded, %d failed), %.1f invocations/s, "
            "%d in flight (limit %d), %s",
            tally.ended,
            tally.items,
            tally.counts.get(b.SUCCESS, 0),
            tally.failed,
            rate,
            self._limit.active,
            self._limit.current,
            eta,
        )

    # -- results and the end -----------------------------------------------------------------------------

    async def _begin_sink(self) -> None:
        assert self.sink is not None
        ended = {
            index
            for index, state in enumerate(self.ledger.states)
            if b.outcome_of_state(state) != b.NOT_STARTED
        }
        carried = await self.sink.begin(ended.__contains__)
        lost = sorted(ended - carried)
        if lost:
            self.log.warning(
                "%d item(s) ended in an earlier run whose lines are missing from %s: written without their "
                "results",
                len(lost),
                self.sink.where(),
            )
            self._unsaved_lines.extend(
                {"index": index, "outcome": b.outcome_of_state(self.ledger.states[index]), "lost": True}
                for index in lost
            )

    async def _load_results(self) -> None:
        for number in range(self.ledger.chunks):
            chunk = await self.store.get(results_chunk(number))
            if isinstance(chunk, dict):
                self._results.update({int(key): value for key, value in chunk.items()})
        self._results.update(self.ledger.recent)

    def _earlier_failures(self) -> list[b.ItemOutcome]:
        """The items that failed in earlier runs (the ledger keeps their outcome, not its details)."""
        listed = {outcome.index for outcome in self._failures}
        room = self.options.failures_listed - len(listed)
        earlier: list[b.ItemOutcome] = []
        for index, state in enumerate(self.ledger.states):
            if len(earlier) >= room:
                break
            outcome = b.outcome_of_state(state)
            if outcome in b.FAILED_OUTCOMES and index not in listed:
                earlier.append(b.ItemOutcome(index, outcome, message="ended in an earlier run", state=state))
        return earlier

    async def _end(self) -> BatchReport:
        tally = self._tally
        wall = time.monotonic() - self._started
        summary = tally.summary(wall_seconds=wall, invoked=self._invoked)
        summary["try_number"] = self.try_number
        failures = b.bounded_failures(
            self._failures + self._earlier_failures(), self.options.failures_listed, tally.failed
        )
        if self._fatal is not None:
            status, message = "error", f"the batch stopped: {self._stopping}"
        elif self.options.policy.exceeded_by(tally.failed, tally.items):
            tolerated = self.options.policy.describe(tally.items)
            status, message = (
                "failed",
                f"{tally.failed} of {tally.items} item(s) failed: more than {tolerated}",
            )
        elif self._stopping is not None:
            status, message = "error", f"the batch stopped: {self._stopping}"
        else:
            status = "success"
            message = f"{tally.counts.get(b.SUCCESS, 0)} of {tally.items} item(s) succeeded"
        summary["status"] = status
        self.ledger.done = {"status": status, "message": message, "summary": summary, "failures": failures}
        await self._checkpoint()
        if self.sink is not None:
            await self.sink.close()
        self._log_progress()
        self.log.info("Batch of %s ended: %s (%s)", self.function, message, _counts(summary))
        results = None
        if self.sink is None:
            results = [self._results.get(index) for index in range(tally.items)]
        return BatchReport(status, summary, failures, results, message, self._fatal)


def _counts(summary: dict[str, Any]) -> str:
    return ", ".join(f"{outcome} {summary.get(outcome, 0)}" for outcome in b.OUTCOMES)
