"""
Cancel on kill against the real emulator: the async operator's and the sensor's ``on_kill`` in the worker,
and the trigger's ``on_kill`` in the triggerer (Airflow 3.3), end the invocation DISCARD; a triggerer
shutdown (a cancellation without a user's action) leaves it running; a failed cancel only warns.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
from airflow.sdk import Context
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

from airflow_provider_fgs.compat import AIRFLOW_V_3_3_PLUS, TaskDeferred
from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator, cancel_invocation
from airflow_provider_fgs.protocol.errors import FunctionError
from airflow_provider_fgs.sensors.functiongraph import FunctionGraphAsyncInvocationSensor
from airflow_provider_fgs.triggers.functiongraph import FunctionGraphAsyncInvocationTrigger
from tests.operators.test_invoke_function_operator import make_context

pytestmark = pytest.mark.usefixtures("fgs_connection")


def record_status(emulator: FunctionGraphEmulator, request_id: str) -> str | None:
    record = emulator.state.async_records.get(request_id)
    return None if record is None else record.status


def wait_until(what: str, probe: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"Timed out waiting for {what}")


def start_long_invocation(emulator: FunctionGraphEmulator) -> str:
    request_id = FunctionGraphHook().invoke_async("sleep", {"seconds": 20})
    wait_until("the invocation to run", lambda: record_status(emulator, request_id) == "RUNNING")
    return request_id


def execute_in_thread(operator: Any) -> tuple[threading.Thread, dict[str, Any], dict[str, Any]]:
    context, ti = make_context()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = operator.execute(context)
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome, ti.xcoms


def waiting_operator(**kwargs: Any) -> InvokeFunctionAsyncOperator:
    return InvokeFunctionAsyncOperator(
        task_id="long",
        function_name="sleep",
        payload={"seconds": 20},
        wait_for_completion=True,
        poll_interval=0.1,
        max_poll_interval=0.2,
        **kwargs,
    )


def test_killing_the_waiting_operator_cancels_its_invocation(emulator: FunctionGraphEmulator) -> None:
    operator = waiting_operator()
    thread, outcome, xcoms = execute_in_thread(operator)
    request_id = wait_until("the request id", lambda: xcoms.get("request_id"))
    wait_until("the invocation to run", lambda: record_status(emulator, request_id) == "RUNNING")

    operator.on_kill()
    thread.join(timeout=20)

    assert record_status(emulator, request_id) == "DISCARD"
    assert isinstance(outcome.get("error"), FunctionError)
    assert "ended DISCARD" in str(outcome["error"])


def test_cancel_on_kill_false_leaves_the_invocation_running(emulator: FunctionGraphEmulator) -> None:
    operator = waiting_operator(cancel_on_kill=False)
    thread, _, xcoms = execute_in_thread(operator)
    request_id = wait_until("the request id", lambda: xcoms.get("request_id"))
    wait_until("the invocation to run", lambda: record_status(emulator, request_id) == "RUNNING")

    operator.on_kill()
    time.sleep(0.5)
    assert record_status(emulator, request_id) == "RUNNING"

    FunctionGraphHook().cancel_async_invocation("sleep", request_id)  # the hook's own cancel ends the test
    thread.join(timeout=20)
    wait_until("the invocation to end", lambda: record_status(emulator, request_id) == "DISCARD")


def test_killing_a_poking_sensor_cancels_only_when_asked(emulator: FunctionGraphEmulator) -> None:
    request_id = start_long_invocation(emulator)
    polite = FunctionGraphAsyncInvocationSensor(task_id="wait", function_name="sleep", request_id=request_id)
    polite.poke(make_context()[0])
    polite.on_kill()
    time.sleep(0.5)
    assert record_status(emulator, request_id) == "RUNNING"

    cancelling = FunctionGraphAsyncInvocationSensor(
        task_id="wait", function_name="sleep", request_id=request_id, cancel_on_kill=True
    )
    cancelling.poke(make_context()[0])
    cancelling.on_kill()
    wait_until("the invocation to end", lambda: record_status(emulator, request_id) == "DISCARD")


def test_a_failed_cancel_logs_a_warning_and_raises_nothing(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    operator = waiting_operator()
    operator.resolve_function_urn()
    cancel_invocation(operator, str(operator.resolve_function_urn()), "no-such-request")
    logged = caplog.text + capsys.readouterr().out  # the task's logger: structlog (stdout) from 3.2
    assert "Could not cancel async invocation no-such-request" in logged
    assert "Not found the async invocation" in logged


def test_the_deferred_operator_hands_cancel_on_kill_to_its_trigger(emulator: FunctionGraphEmulator) -> None:
    for flag in (True, False):
        operator = InvokeFunctionAsyncOperator(
            task_id="t", function_name="hello", wait_for_completion=True, deferrable=True, cancel_on_kill=flag
        )
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(make_context()[0])
        _, kwargs = deferred.value.trigger.serialize()
        assert kwargs["cancel_on_kill"] is flag


class ResumingTaskInstance:
    """What a resumed task's ``ti`` offers here: the XComs its first part pushed in the same try."""

    task_id = "long"
    map_index = -1

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, *, task_ids: str, key: str, map_indexes: int) -> Any:
        assert (task_ids, map_indexes) == (self.task_id, self.map_index)
        return self.xcoms.get(key)


def deferred_with_a_running_invocation(
    emulator: FunctionGraphEmulator, **kwargs: Any
) -> tuple[InvokeFunctionAsyncOperator, Context, str]:
    operator = waiting_operator(deferrable=True, **kwargs)
    ti = ResumingTaskInstance()
    context = cast("Context", {"ti": ti})
    with pytest.raises(TaskDeferred):
        operator.execute(context)
    request_id = ti.xcoms["request_id"]
    wait_until("the invocation to run", lambda: record_status(emulator, request_id) == "RUNNING")
    return operator, context, request_id


def resume_after_failed_deferral(operator: Any, context: Context, reason: TriggerFailureReason) -> None:
    """Resume the task as Airflow does after a failed deferral (the reason as read back from the DB)."""
    operator.resume_execution(TRIGGER_FAIL_REPR, {"error": reason.value}, context)


def test_a_deferral_that_timed_out_cancels_the_invocation_before_failing(
    emulator: FunctionGraphEmulator,
) -> None:
    # execution_timeout passed while deferred: Airflow stops the trigger without on_kill and resumes the
    # task with "__fail__" only to raise; the invocation would otherwise run on beside the next try's.
    operator, context, request_id = deferred_with_a_running_invocation(emulator)
    with pytest.raises(Exception, match="Trigger timeout") as raised:
        resume_after_failed_deferral(operator, context, TriggerFailureReason.TRIGGER_TIMEOUT)
    assert type(raised.value).__name__ == "TaskDeferralTimeout"  # Airflow's own error still fails the task
    wait_until("the invocation to end", lambda: record_status(emulator, request_id) == "DISCARD")


def test_a_failed_deferral_leaves_the_invocation_running_with_cancel_on_kill_false(
    emulator: FunctionGraphEmulator,
) -> None:
    operator, context, request_id = deferred_with_a_running_invocation(emulator, cancel_on_kill=False)
    with pytest.raises(Exception, match="Trigger failure"):
        resume_after_failed_deferral(operator, context, TriggerFailureReason.TRIGGER_FAILURE)
    time.sleep(0.3)
    assert record_status(emulator, request_id) == "RUNNING"
    FunctionGraphHook().cancel_async_invocation("sleep", request_id)


def test_a_cancel_that_cannot_be_attempted_never_replaces_airflows_error(
    emulator: FunctionGraphEmulator, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    operator, context, request_id = deferred_with_a_running_invocation(emulator)

    def unreadable(**kwargs: Any) -> Any:
        raise RuntimeError("the XCom API is down")

    context["ti"].xcom_pull = unreadable  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="Trigger timeout"):
        resume_after_failed_deferral(operator, context, TriggerFailureReason.TRIGGER_TIMEOUT)
    logged = caplog.text + capsys.readouterr().out
    assert "Could not cancel the async invocation of this try: the XCom API is down" in logged
    FunctionGraphHook().cancel_async_invocation("sleep", request_id)


def test_a_failed_deferral_of_an_ended_invocation_cancels_nothing(
    emulator: FunctionGraphEmulator, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    operator, context, request_id = deferred_with_a_running_invocation(emulator)
    FunctionGraphHook().cancel_async_invocation("sleep", request_id)
    wait_until("the invocation to end", lambda: record_status(emulator, request_id) == "DISCARD")
    with pytest.raises(Exception, match="Trigger failure"):
        resume_after_failed_deferral(operator, context, TriggerFailureReason.TRIGGER_FAILURE)
    logged = caplog.text + capsys.readouterr().out
    assert f"Async invocation {request_id}" in logged
    assert "already ended DISCARD" in logged
    assert "Could not cancel" not in logged


def trigger_for(emulator: FunctionGraphEmulator, request_id: str, **kwargs: Any) -> Any:
    return FunctionGraphAsyncInvocationTrigger(
        functiongraph_conn_id="functiongraph_default",
        function_urn=emulator.urn("sleep"),
        request_id=request_id,
        poll_interval=0.1,
        max_poll_interval=0.2,
        **kwargs,
    )


async def cancelled_run(trigger: Any, *, user_action: bool) -> None:
    """Run the trigger, then cancel it as the triggerer does (with Airflow 3.3's message on a user action)."""

    async def consume() -> None:
        async for _ in trigger.run():
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.5)
    if user_action:
        from airflow.jobs.triggerer_job_runner import _USER_ACTION_CANCEL_MSG

        task.cancel(_USER_ACTION_CANCEL_MSG)
    else:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if user_action:
        await trigger.on_kill()  # what the 3.3 triggerer does next


# Before 3.3 the triggerer has no on_kill(): the trigger reads its task's state through the triggerer's
# supervisor, which only a running triggerer provides (tests/integration/test_cancel.py).
on_kill_triggerer = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="Airflow 3.3's triggerer tells a user's action by calling on_kill()"
)


@on_kill_triggerer
def test_the_trigger_cancels_on_a_user_action(emulator: FunctionGraphEmulator) -> None:
    request_id = start_long_invocation(emulator)
    asyncio.run(cancelled_run(trigger_for(emulator, request_id, cancel_on_kill=True), user_action=True))
    wait_until("the invocation to end", lambda: record_status(emulator, request_id) == "DISCARD")


def test_a_triggerer_shutdown_never_cancels(emulator: FunctionGraphEmulator) -> None:
    request_id = start_long_invocation(emulator)
    asyncio.run(cancelled_run(trigger_for(emulator, request_id, cancel_on_kill=True), user_action=False))
    time.sleep(0.3)
    assert record_status(emulator, request_id) == "RUNNING"
    FunctionGraphHook().cancel_async_invocation("sleep", request_id)


@on_kill_triggerer
def test_the_trigger_does_not_cancel_when_told_not_to(emulator: FunctionGraphEmulator) -> None:
    request_id = start_long_invocation(emulator)
    asyncio.run(cancelled_run(trigger_for(emulator, request_id), user_action=True))
    assert record_status(emulator, request_id) == "RUNNING"
    FunctionGraphHook().cancel_async_invocation("sleep", request_id)
