"""
InvokeFunctionOperator against the real emulator, over loopback, through the real hook.

``execute()`` is called directly; the only stand-in is the task instance in the context, which records
``xcom_push`` calls (the real XCom backend is exercised by the DAG tests in ``tests/dags``). Log lines
are read from what the operator's logger really prints.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from airflow.sdk import Context

from airflow_provider_fgs.links.functiongraph import FunctionGraphConsoleLink, function_console_url
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.protocol.errors import FunctionError, FunctionGraphApiError, InvalidRequestError
from airflow_provider_fgs.protocol.invoke import MAX_PAYLOAD_BYTES, InvocationResult
from airflow_provider_fgs.protocol.urn import FunctionUrn

SECRET_KEY = "demo-secret-key"


class RecordingTaskInstance:
    """Records XCom pushes, as the task instance in an Airflow context would store them."""

    dag_id, run_id, task_id, map_index, try_number = "dag", "run", "invoke", -1, 1

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def make_context() -> tuple[Context, RecordingTaskInstance]:
    ti = RecordingTaskInstance()
    return cast("Context", {"ti": ti}), ti


def run(operator: InvokeFunctionOperator) -> tuple[Any, dict[str, Any]]:
    context, ti = make_context()
    return operator.execute(context), ti.xcoms


def invoke_op(**kwargs: Any) -> InvokeFunctionOperator:
    kwargs.setdefault("task_id", "invoke")
    return InvokeFunctionOperator(**kwargs)


# -- arguments checked when the DAG is parsed -------------------------------------------------------


def test_urn_and_name_together_are_refused_naming_both() -> None:
    with pytest.raises(InvalidRequestError, match=r"function_urn='urn:fss:x'.*function_name='square'"):
        invoke_op(function_urn="urn:fss:x", function_name="square")


def test_neither_urn_nor_name_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"function_urn=.*or function_name="):
        invoke_op()


def test_urn_with_qualifier_is_refused_naming_the_qualifier(emulator: Any) -> None:
    with pytest.raises(InvalidRequestError, match="qualifier='v1'"):
        invoke_op(function_urn=emulator.urn("square"), qualifier="v1")


def test_qualifier_and_alias_together_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="qualifier='v1' or alias='prod'"):
        invoke_op(function_name="square", qualifier="v1", alias="prod")


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [({"log_type": "full"}, "'full'"), ({"request_version": "v2"}, "'v2'")],
)
def test_bad_options_are_refused_at_parse_time(kwargs: dict[str, Any], bad: str) -> None:
    with pytest.raises(InvalidRequestError, match=bad):
        invoke_op(function_name="square", **kwargs)


def test_templated_fields_and_payload_renderer() -> None:
    assert set(InvokeFunctionOperator.template_fields) == {
        "function_urn",
        "function_name",
        "qualifier",
        "alias",
        "payload",
        "instance_memory",
    }
    assert InvokeFunctionOperator.template_fields_renderers["payload"] == "json"


# -- input checked before any call ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"payload": "not json {"}, "not valid JSON"),
        ({"payload": b"\xff\xfe"}, "not valid JSON"),
        ({"payload": {"blob": "x" * MAX_PAYLOAD_BYTES}}, "at most"),
        ({"payload": {"x": 1}, "instance_memory": "100"}, "instance_memory '100'"),
    ],
    ids=["str-not-json", "bytes-not-json", "over-6-MB", "bad-memory"],
)
def test_bad_input_fails_before_any_request(
    emulator: Any, fgs_connection: None, kwargs: dict[str, Any], message: str
) -> None:
    before = emulator.request_count()
    with pytest.raises(InvalidRequestError, match=message):
        run(invoke_op(function_name="square", **kwargs))
    assert emulator.request_count() == before


# -- successful invocations -------------------------------------------------------------------------


def test_invoke_by_name_returns_result_and_pushes_invocation_details(
    emulator: Any, fgs_connection: None, capsys: pytest.CaptureFixture[str]
) -> None:
    result, xcoms = run(invoke_op(function_name="square", payload={"x": 7}))

    assert result == {"x": 7, "square": 49}
    request_id = xcoms["request_id"]
    assert isinstance(request_id, str)
    assert request_id
    assert "squaring 7" in xcoms["log"]
    assert request_id in xcoms["log"]
    assert isinstance(xcoms["summary"], dict)
    assert "duration" in xcoms["summary"]
    assert isinstance(xcoms["billing_duration_ms"], int)
    assert "error_code" not in xcoms  # a function error's only
    assert "return_value" not in xcoms  # Airflow pushes the returned value itself

    out = capsys.readouterr().out
    assert f"Function log of request {request_id} (" in out
    assert "| " in out
    assert "squaring 7" in out
    summary_line = next(line for line in out.splitlines() if "Invocation of " in line)
    assert "succeeded" in summary_line
    assert f"request id {request_id}" in summary_line
    assert "duration" in summary_line
    assert f"billed duration {xcoms['billing_duration_ms']} ms" in summary_line


def test_invoke_by_urn_and_json_string_or_bytes_payloads(emulator: Any, fgs_connection: None) -> None:
    urn = emulator.urn("square")
    assert run(invoke_op(function_urn=urn, payload='{"x": 3}'))[0] == {"x": 3, "square": 9}
    assert run(invoke_op(function_urn=urn, payload=b'{"x": 4}'))[0] == {"x": 4, "square": 16}


def test_list_payload_reaches_the_function_as_json(emulator: Any, fgs_connection: None) -> None:
    result, _ = run(invoke_op(function_name="count_words", payload=["a", "b", "a"]))
    assert result == {"total": 3, "distinct": 2, "top": [["a", 2], ["b", 1]]}


def test_deserialize_result_false_returns_the_raw_string(emulator: Any, fgs_connection: None) -> None:
    result, _ = run(invoke_op(function_name="square", payload={"x": 5}, deserialize_result=False))
    assert isinstance(result, str)
    assert json.loads(result) == {"x": 5, "square": 25}


def test_do_xcom_push_false_pushes_nothing(emulator: Any, fgs_connection: None) -> None:
    result, xcoms = run(invoke_op(function_name="square", payload={"x": 2}, do_xcom_push=False))
    assert result == {"x": 2, "square": 4}
    assert xcoms == {}


def test_log_type_none_asks_for_no_log(
    emulator: Any, fgs_connection: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _, xcoms = run(invoke_op(function_name="square", payload={"x": 2}, log_type="none"))
    assert xcoms["log"] is None
    assert "squaring 2" not in capsys.readouterr().out


def test_task_log_says_when_the_function_log_was_truncated(
    emulator: Any, fgs_connection: None, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    _, xcoms = run(invoke_op(function_name="chatty", payload={"lines": 300}))
    out = capsys.readouterr().out
    assert "truncated: showing the last 2000 bytes (the platform returns at most 2000)" in out
    assert "line 0299" in xcoms["log"]

    _, xcoms = run(invoke_op(function_name="square", payload={"x": 3}))
    out = capsys.readouterr().out
    size = len(xcoms["log"].encode("utf-8"))
    assert f"({size} bytes, complete):" in out
    assert "truncated" not in out


@pytest.mark.parametrize("pad", [0, 1, 2])
def test_multi_byte_log_tail_never_shows_a_replacement_character(
    emulator: Any, fgs_connection: None, capsys: pytest.CaptureFixture[str], pad: int
) -> None:
    # 3-byte characters: the 2000-byte tail starts inside one for two pads out of three.
    _, xcoms = run(invoke_op(function_name="accents", payload={"lines": 60, "pad": pad}))
    assert "\ufffd" not in xcoms["log"]
    assert "€" * 20 + "." * pad + " 59" in xcoms["log"]
    assert "\ufffd" not in capsys.readouterr().out


def test_instance_memory_is_sent(emulator: Any, fgs_connection: None) -> None:
    result, xcoms = run(invoke_op(function_name="memory", instance_memory="256"))  # dynamic memory on
    assert result == {"memory": 256}
    assert xcoms["summary"].get("memorySize") == 256


def test_instance_memory_is_ignored_without_dynamic_memory(emulator: Any, fgs_connection: None) -> None:
    _, xcoms = run(invoke_op(function_name="square", payload={"x": 2}, instance_memory="256"))
    assert xcoms["summary"].get("memorySize") == 128  # square's configured memory, as FunctionGraph does


def test_nothing_secret_in_xcom_or_task_log(
    emulator: Any, fgs_connection: None, capsys: pytest.CaptureFixture[str]
) -> None:
    operator = invoke_op(function_name="hello", payload={"name": "Ada"})
    result, xcoms = run(operator)
    assert result["message"] == "Hello, Ada!"
    pushed = json.dumps([result, xcoms])
    assert SECRET_KEY not in pushed
    assert SECRET_KEY not in capsys.readouterr().out
    rendered = json.dumps({field: getattr(operator, field) for field in operator.template_fields})
    assert SECRET_KEY not in rendered


# -- failures ---------------------------------------------------------------------------------------


def test_function_error_fails_after_logging_the_function_log(
    emulator: Any, fgs_connection: None, capsys: pytest.CaptureFixture[str]
) -> None:
    context, ti = make_context()
    operator = invoke_op(function_name="divide", payload={"numerator": 1, "denominator": 0})
    with pytest.raises(FunctionError) as caught:
        operator.execute(context)

    error = caught.value
    assert error.error_type == "ZeroDivisionError"
    assert "division by zero" in (error.error_message or "")
    assert error.request_id
    assert error.request_id == ti.xcoms["request_id"]
    assert "ZeroDivisionError: " in str(error)
    assert str(error).startswith(f"Function {emulator.urn('divide')} failed: ")  # as the deferred path
    assert error.request_id in str(error)
    assert "dividing 1 by 0" in (error.log or "")
    # The invocation details are pushed even though the task fails; the result is not.
    assert "dividing 1 by 0" in ti.xcoms["log"]
    assert ti.xcoms["error_code"] == error.error_code != "0"
    assert "return_value" not in ti.xcoms

    out = capsys.readouterr().out
    assert "| " in out
    assert "dividing 1 by 0" in out
    assert "Function stack trace of request" in out
    assert "quotient = numerator / denominator" in out  # the handler's failing line
    summary_line = next(line for line in out.splitlines() if "Invocation of " in line)
    assert "failed" in summary_line


def test_unknown_function_raises_the_platform_error(emulator: Any, fgs_connection: None) -> None:
    context, ti = make_context()
    with pytest.raises(FunctionGraphApiError) as caught:
        invoke_op(function_name="no_such_function").execute(context)
    assert caught.value.http_status == 404
    assert ti.xcoms == {"error_type": "NotFoundError"}  # no invocation to describe: only why it failed


def test_undecodable_log_is_reported_and_the_task_still_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    context, ti = make_context()
    result = InvocationResult(
        status_code=200,
        request_id="req-1",
        raw_result='{"ok": true}',
        result={"ok": True},
        log_undecodable=True,
    )
    operator = invoke_op(function_name="square")
    assert operator.process_result(context, result) == {"ok": True}
    out = capsys.readouterr().out
    assert "could not be decoded" in out
    assert "req-1" in out
    assert ti.xcoms["log"] is None


# -- console link -----------------------------------------------------------------------------------


def test_console_link_for_a_named_function_uses_the_connection(emulator: Any, fgs_connection: None) -> None:
    operator = invoke_op(function_name="square", qualifier="3")
    expected = FunctionUrn(emulator.region, emulator.project_id, "default", "square", "3")
    url = FunctionGraphConsoleLink().get_link(operator, ti_key=cast("Any", None))
    assert url == function_console_url(expected)
    assert url.startswith("https://console-intl.huaweicloud.com/functiongraph/?region=ap-southeast-1#/")
    assert url.endswith(f"/detail/ap-southeast-1/{emulator.project_id}/default/square/3")


def test_console_link_for_a_urn_needs_no_connection() -> None:
    urn = "urn:fss:cn-north-4:0123456789abcdef:function:billing:report:!prod"
    url = FunctionGraphConsoleLink().get_link(invoke_op(function_urn=urn), ti_key=cast("Any", None))
    assert url == (
        "https://console.huaweicloud.com/functiongraph/?region=cn-north-4"
        "#/serverless/functions/detail/cn-north-4/0123456789abcdef/billing/report/latest"
    )


def test_console_link_is_empty_when_the_function_cannot_be_resolved() -> None:
    operator = invoke_op(function_urn="{{ var.value.function_urn }}")
    assert FunctionGraphConsoleLink().get_link(operator, ti_key=cast("Any", None)) == ""
