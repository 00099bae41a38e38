"""
Bad input, table-driven, through the hook AND the operator: every case is a clear error that names the
bad value (or field), raised before any network call (the emulator's request counter does not move).

Pure-parser tables elsewhere (not repeated): ``tests/protocol/test_urn.py``, ``tests/protocol/test_invoke.py``
(``test_bad_options_are_named``, ``test_encode_payload``), ``tests/client/test_settings.py``
(``test_bad_connections_name_the_field``); parse-time operator checks in
``tests/operators/test_invoke_function_operator.py``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest
from airflow.exceptions import AirflowNotFoundException

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.operators.functiongraph import InvokeFunctionOperator
from airflow_provider_fgs.protocol.errors import InvalidRequestError
from airflow_provider_fgs.protocol.invoke import ALLOWED_MEMORY_SIZES, MAX_PAYLOAD_BYTES
from tests.connections import DEMO_KEY
from tests.operators.test_invoke_function_operator import make_context
from tests.reliability.conftest import Connect

P = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"  # the emulator's project
U = f"urn:fss:ap-southeast-1:{P}:function"
PATHS = ["hook", "operator"]


def call(path: str, conn_id: str, *, urn: str | None = None, name: str | None = None, **kwargs: Any) -> Any:
    """Invoke through the hook or through the operator's ``execute``; returns what either returns."""
    if path == "hook":
        hook = FunctionGraphHook(conn_id)
        return hook.invoke(urn if urn is not None else hook.resolve_urn(function_name=name), **kwargs)
    operator = InvokeFunctionOperator(
        task_id="bad_input", function_urn=urn, function_name=name, functiongraph_conn_id=conn_id, **kwargs
    )
    context, _ = make_context()
    return operator.execute(context)


def assert_refused_before_any_request(
    emu: Any, action: Callable[[], Any], named: str, error: type[Exception] = InvalidRequestError
) -> str:
    before = emu.request_count()
    with pytest.raises(error) as info:
        action()
    message = str(info.value)
    assert named in message, message
    assert emu.request_count() == before
    return message


# -- URNs: every malformed shape -------------------------------------------------------------------------

BAD_URNS = [
    (f"{U}:default", f"'{U}:default'"),  # too few parts
    (f"{U}:default:fn:latest:extra", ":extra'"),  # too many parts
    (f"arn:fss:ap-southeast-1:{P}:function:default:fn", "'arn:fss:"),  # not urn
    (f"urn:fgs:ap-southeast-1:{P}:function:default:fn", "'urn:fgs:"),  # not fss
    (f"urn:fss:ap-southeast-1:{P}:func:default:fn", ":func:"),  # not function
    (f"urn:fss:AP-SOUTHEAST-1:{P}:function:default:fn", "region 'AP-SOUTHEAST-1'"),
    (f"urn:fss::{P}:function:default:fn", "region ''"),
    ("urn:fss:ap-southeast-1:pr/oj:function:default:fn", "project id 'pr/oj'"),
    ("urn:fss:ap-southeast-1::function:default:fn", "project id ''"),
    (f"{U}:pack age:fn", "package 'pack age'"),
    (f"{U}::fn", "package ''"),
    (f"{U}:default:9fn", "function name '9fn'"),
    (f"{U}:default:", "function name ''"),
    (f"{U}:default:{'f' * 129}", f"function name '{'f' * 129}'"),
    (f"{U}:default:fünf", "function name 'fünf'"),
    (f"{U}:default:..", "function name '..'"),
    (f"{U}:default:fn%2F..", "function name 'fn%2F..'"),
    (f"{U}:default:fn:a b", "qualifier (version) 'a b'"),
    (f"{U}:default:fn:", "qualifier (version) ''"),
    (f"{U}:default:fn:!9x", "alias '9x'"),
    (f"{U}:default:fn:!", "alias ''"),
    (f"{U}:default:fn:v/1", "qualifier (version) 'v/1'"),
    (f"{U}:default:fn\n:latest", "function name 'fn\\n'"),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("urn", "named"), BAD_URNS, ids=[named for _, named in BAD_URNS])
def test_malformed_urn_is_refused_naming_the_bad_part(
    emu: Any, connect: Connect, path: str, urn: str, named: str
) -> None:
    conn_id = connect("aksk")
    assert_refused_before_any_request(emu, lambda: call(path, conn_id, urn=urn), named)


BAD_NAMES = [
    ("9fn", "'9fn'"),
    ("my fn", "'my fn'"),
    ("fn:latest", "'fn:latest'"),
    ("f" * 129, "'" + "f" * 129 + "'"),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("name", "named"), BAD_NAMES, ids=["digit", "space", "colon", "too-long"])
def test_bad_function_name_is_refused_naming_it(
    emu: Any, connect: Connect, path: str, name: str, named: str
) -> None:
    conn_id = connect("aksk")
    assert_refused_before_any_request(emu, lambda: call(path, conn_id, name=name), named)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"qualifier": "a b"}, "'a b'"),
        ({"alias": "9x"}, "'9x'"),
        ({"package": "pack/age"}, "'pack/age'"),
    ],
)
def test_bad_parts_of_a_named_function_are_refused(
    emu: Any, connect: Connect, kwargs: dict[str, str], named: str
) -> None:
    conn_id = connect("aksk")
    hook = FunctionGraphHook(conn_id)
    assert_refused_before_any_request(emu, lambda: hook.resolve_urn(function_name="hello", **kwargs), named)
    operator = InvokeFunctionOperator(
        task_id="t", function_name="hello", functiongraph_conn_id=conn_id, **kwargs
    )
    assert_refused_before_any_request(emu, lambda: operator.execute(make_context()[0]), named)


# -- payloads --------------------------------------------------------------------------------------------

BIG = MAX_PAYLOAD_BYTES
BAD_PAYLOADS = [
    ("not json {", "'not json {'"),
    ("", "Payload str is not valid JSON"),
    ("{'single': 'quotes'}", "\"{'single': 'quotes'}\""),
    ('{"x": NaN}', "NaN is not JSON"),
    ("Infinity", "Infinity is not JSON"),
    (b"\xff\xfe{}", "Payload bytes is not valid JSON"),
    (b"<xml/>", "'<xml/>'"),
    ({"x": float("nan")}, "Out of range float values"),
    ([float("inf")], "Out of range float values"),
    ({"x": object()}, "Object of type object is not JSON serializable"),
    ({"when": datetime.date(2024, 1, 1)}, "Object of type date"),
    ({1, 2}, "Payload of type set"),
    ({"blob": "x" * BIG}, f"at most {BIG} bytes"),
    (json.dumps(["x" * BIG]), f"at most {BIG} bytes"),
    (b"[" + b"1," * (BIG // 2) + b"1]", f"at most {BIG} bytes"),
]
PAYLOAD_IDS = [
    "str-not-json",
    "empty-str",
    "python-repr",
    "nan-literal",
    "infinity-literal",
    "bytes-not-utf8",
    "bytes-xml",
    "nan-float",
    "inf-float",
    "object",
    "date",
    "set",
    "dict-over-6MB",
    "str-over-6MB",
    "bytes-over-6MB",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("payload", "named"), BAD_PAYLOADS, ids=PAYLOAD_IDS)
def test_bad_payload_is_refused_naming_it(
    emu: Any, connect: Connect, path: str, payload: Any, named: str
) -> None:
    conn_id = connect("aksk")
    assert_refused_before_any_request(emu, lambda: call(path, conn_id, name="echo", payload=payload), named)


def test_payload_of_exactly_6_mb_is_sent(emu: Any, connect: Connect) -> None:
    body = json.dumps("x" * (MAX_PAYLOAD_BYTES - 2))  # the quotes make it exactly the limit
    assert len(body) == MAX_PAYLOAD_BYTES
    result = FunctionGraphHook(connect("aksk")).invoke("noop", body, log_type=None)
    assert not result.is_function_error
    assert emu.request_count("invoke") == 1


# -- memory sizes ----------------------------------------------------------------------------------------

BAD_MEMORY: list[Any] = [0, 100, 127, 129, 10241, 20480, -128, 256.5, "lots", "256MB", "0x100", ""]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("memory", BAD_MEMORY, ids=[repr(m) for m in BAD_MEMORY])
def test_memory_outside_the_list_is_refused_naming_it(
    emu: Any, connect: Connect, path: str, memory: Any
) -> None:
    conn_id = connect("aksk")
    message = assert_refused_before_any_request(
        emu, lambda: call(path, conn_id, name="echo", instance_memory=memory), f"instance_memory {memory!r}"
    )
    assert str(ALLOWED_MEMORY_SIZES) in message


# -- connection fields -----------------------------------------------------------------------------------

BAD_CONNECTIONS: list[tuple[dict[str, Any], str]] = [
    ({"region": None}, "extra 'region' is required"),
    ({"project_id": None}, "extra 'project_id' is required"),
    ({"login": "", "auth_type": "aksk"}, "login must hold the access key"),
    ({"password": "", "auth_type": "aksk"}, "password must hold the secret key (SK)"),
    ({"password": ""}, "password must hold the secret key (SK)"),  # half a pair is not the credential chain
    ({"login": "", "password": "", "metadata_endpoint": "gopher://md"}, "'gopher://md'"),
    ({"auth_type": "pod_identity"}, "login/password must be empty for auth_type 'pod_identity'"),
    ({"auth_type": "oauth"}, "'oauth'"),
    ({"endpoint": "ftp://fg.example"}, "'ftp://fg.example'"),
    ({"iam_endpoint": "gopher://iam"}, "'gopher://iam'"),
    ({"connect_timeout": "soon"}, "'soon'"),
    ({"read_timeout": 0}, "extra 'read_timeout' must be a number >= 0.001, got 0"),
    ({"retry_attempts": -1}, "got -1"),
    ({"retry_min_wait": "fast"}, "'fast'"),
    ({"retry_sync_invoke": "sure"}, "'sure'"),
    ({"verify": ""}, None),  # an empty verify is the default (true): not an error
    ({"proxies": '{"https": '}, "extra 'proxies' is not valid JSON"),
    ({"mode": "password", "domain_name": None, "auth_type": "password"}, "extra 'domain_name'"),
    ({"mode": "token", "token": None}, "extra 'token' is required"),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("fields", "named"), BAD_CONNECTIONS, ids=[repr(f) for f, _ in BAD_CONNECTIONS])
def test_bad_connection_field_is_refused_naming_it(
    emu: Any, connect: Connect, path: str, fields: dict[str, Any], named: str | None
) -> None:
    fields = dict(fields)
    mode = fields.pop("mode", "aksk")
    login, password = fields.pop("login", None), fields.pop("password", None)
    conn_id = connect(mode, login=login, password=password, **fields)
    if named is None:
        outcome = call(path, conn_id, name="hello")
        assert (outcome.result if path == "hook" else outcome)["message"] == "Hello, world!"
        return
    message = assert_refused_before_any_request(emu, lambda: call(path, conn_id, name="hello"), named)
    assert conn_id in message
    assert DEMO_KEY[1] not in message


@pytest.mark.parametrize("path", PATHS)
def test_unknown_connection_id_is_named(emu: Any, path: str) -> None:
    assert_refused_before_any_request(
        emu,
        lambda: call(path, "no_such_fgs_connection", name="hello"),
        "no_such_fgs_connection",
        AirflowNotFoundException,
    )
