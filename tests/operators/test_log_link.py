"""The LTS log link: the function's log stream, from its config, read through the real emulator."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_fgs.client.settings_cache import FUNCTION_CONFIGS
from airflow_provider_fgs.emulator import FunctionGraphEmulator
from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.links.functiongraph import FunctionGraphLogLink, lts_log_stream_url
from airflow_provider_fgs.operators.async_invocation import InvokeFunctionAsyncOperator
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.protocol.function_config import parse_function_config
from airflow_provider_fgs.sensors.functiongraph import FunctionGraphAsyncInvocationSensor

NO_KEY = cast("Any", None)


def test_the_lts_page_follows_huaweis_url_rules() -> None:
    url = lts_log_stream_url("cn-north-4", "group-1", "stream 2")
    assert url == (
        "https://console.huaweicloud.com/lts/?region=cn-north-4"
        "#/cts/logEventsLeftMenu/events?groupId=group-1&topicId=stream%202"
    )
    # condition: key:value, LTS's built-in field of the raw log text searched for the request id.
    assert lts_log_stream_url("cn-north-4", "g", "s", request_id="4c70bf0e-6ea8-49") == (
        "https://console.huaweicloud.com/lts/?region=cn-north-4"
        "#/cts/logEventsLeftMenu/events?groupId=g&topicId=s&condition=content:4c70bf0e-6ea8-49"
    )
    assert lts_log_stream_url("ap-southeast-1", "g", "s").startswith(
        "https://console-intl.huaweicloud.com/lts/"
    )


@pytest.mark.usefixtures("fgs_connection")
def test_every_task_links_to_its_functions_log_stream(emulator: FunctionGraphEmulator) -> None:
    FUNCTION_CONFIGS.clear()
    before = emulator.request_count("log_stream")
    stream = FunctionGraphHook().function_log_stream("hello")
    assert stream is not None
    assert emulator.request_count("log_stream") == before + 1  # the config names none: the documented route
    group_id, stream_id = stream
    tasks = [  # outside a task run no request id is pushed: the link opens the whole stream
        InvokeFunctionOperator(task_id="a", function_name="hello"),
        InvokeFunctionAsyncOperator(task_id="b", function_name="hello"),
    ]
    expected = lts_log_stream_url(emulator.region, group_id, stream_id)
    for task in tasks:
        assert FunctionGraphLogLink().get_link(task, ti_key=NO_KEY) == expected
    query = parse_qs(urlsplit(expected).fragment.split("?", 1)[1])
    assert query == {"groupId": [group_id], "topicId": [stream_id]}
    # The sensor names its request id; an unrendered template is no request id.
    sensor = FunctionGraphAsyncInvocationSensor(task_id="c", function_name="hello", request_id="r-1")
    assert FunctionGraphLogLink().get_link(sensor, ti_key=NO_KEY) == lts_log_stream_url(
        emulator.region, group_id, stream_id, request_id="r-1"
    )
    sensor.request_id = "{{ ti.xcom_pull(task_ids='start') }}"
    assert FunctionGraphLogLink().get_link(sensor, ti_key=NO_KEY) == expected
    # The operator knows the request id of the invocation it made (none while it defers: no XCom read).
    tasks[0].request_id = "r-2"  # type: ignore[attr-defined]
    assert FunctionGraphLogLink().get_link(tasks[0], ti_key=NO_KEY) == lts_log_stream_url(
        emulator.region, group_id, stream_id, request_id="r-2"
    )


def test_a_log_stream_named_in_the_config_needs_no_second_query() -> None:
    config = parse_function_config(
        200, {}, b'{"timeout": 3, "log_config": {"group_id": "g", "stream_id": "s"}}', function="f"
    )
    assert (config.timeout, config.log_group_id, config.log_stream_id) == (3.0, "g", "s")
    flat = parse_function_config(200, {}, b'{"log_group_id": "g2", "log_stream_id": "s2"}', function="f")
    assert (flat.timeout, flat.log_group_id, flat.log_stream_id) == (None, "g2", "s2")


def test_no_link_when_the_function_cannot_be_resolved() -> None:
    operator = InvokeFunctionOperator(task_id="a", function_name="hello", functiongraph_conn_id="missing")
    assert FunctionGraphLogLink().get_link(operator, ti_key=NO_KEY) == ""


@pytest.mark.parametrize(
    "body", [b'{"timeout": 0}', b'{"timeout": -5}', b'{"timeout": "soon"}', b"[1, 2]", b"<html>"]
)
def test_an_odd_config_answer_leaves_the_timeout_unknown(body: bytes) -> None:
    config = parse_function_config(200, {}, body, function="f")
    assert (config.timeout, config.log_group_id, config.log_stream_id) == (None, None, None)
