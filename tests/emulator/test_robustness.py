"""Bad input never crashes the emulator: every refusal is a clear 4xx in the documented body shape."""

from __future__ import annotations

import socket
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_fgs.emulator import FunctionGraphEmulator
from tests.emulator.conftest import Client, function_url


def _is_fss_error(response: requests.Response) -> bool:
    body = response.json()
    assert len(response.headers["X-Request-Id"]) == 36
    return isinstance(body.get("error_code"), str) and isinstance(body.get("error_msg"), str)


@pytest.mark.parametrize(
    ("method", "action"), [("GET", "invocations"), ("PUT", "invocations-async"), ("DELETE", "cancel")]
)
def test_wrong_method_is_405(client: Client, method: str, action: str) -> None:
    response = client.session.request(method, function_url(client.emu, "hello", action), timeout=10)
    assert response.status_code == 405
    assert _is_fss_error(response)
    assert response.headers["Allow"]


@pytest.mark.parametrize("path", ["/nowhere", "/v2/p/fgs/functions/x/unknown-action", "/v3/auth/other"])
def test_unknown_path_is_404(client: Client, path: str) -> None:
    response = client.session.get(client.emu.url + path, timeout=10)
    assert response.status_code == 404
    assert _is_fss_error(response)


def test_other_project_in_path_is_403(client: Client) -> None:
    url = function_url(client.emu, "hello").replace(f"/v2/{client.emu.project_id}/", "/v2/someone-else/")
    response = client.post(url, {})
    assert response.status_code == 403
    assert _is_fss_error(response)


def test_huge_header_is_refused_and_server_survives(client: Client) -> None:
    try:
        response = client.session.post(
            function_url(client.emu, "hello"), json={}, headers={"X-Big": "a" * 300_000}, timeout=10
        )
        assert 400 <= response.status_code < 500
    except requests.ConnectionError:
        pass  # the HTTP parser may close the connection instead of answering
    assert client.invoke("hello", {}).status_code == 200


def test_garbage_on_the_socket_and_server_survives(client: Client) -> None:
    host, port = client.emu.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"\x00\x01NOT HTTP AT ALL\r\n\r\n")
        sock.recv(1024)
    assert client.invoke("hello", {}).status_code == 200


def test_binary_body_is_406(client: Client) -> None:
    response = client.invoke("hello", b"\xff\xfe\x00binary")
    assert response.status_code == 406
    assert _is_fss_error(response)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    segment=st.text(min_size=1, max_size=80),
    body=st.binary(max_size=200),
    # Values the HTTP layer itself rejects (control characters) are answered by the server's parser.
    memory=st.one_of(st.none(), st.from_regex(r"[!-~]{1,8}", fullmatch=True)),
)
def test_fuzzed_requests_get_documented_answers(
    client: Client, segment: str, body: bytes, memory: str | None
) -> None:
    headers = {"X-Auth-Token": client.token}
    if memory is not None:
        headers["X-Cff-Instance-Memory"] = memory
    url = f"{client.emu.url}/v2/{client.emu.project_id}/fgs/functions/{quote(segment, safe='')}/invocations"
    response = client.session.post(url, data=body, headers=headers, timeout=30)
    assert response.status_code < 500
    if response.status_code >= 400:
        assert _is_fss_error(response)


def test_emulator_validates_its_own_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError):
        FunctionGraphEmulator(tmp_path / "missing")
    with pytest.raises(ValueError, match="region"):
        FunctionGraphEmulator(tmp_path, region="Not A Region")


def test_broken_settings_file_is_a_clear_500(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "broken.py").write_text("def handler(event, context):\n    return 1\n")
    (tmp_path / "broken.json").write_text("{not json")
    with FunctionGraphEmulator(tmp_path, prestart_workers=0) as emu:
        response = Client(emu).invoke("broken", {})
        assert response.status_code == 500
        assert "broken.json" in response.json()["error_msg"]


def test_handler_without_handler_function(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty.py").write_text("x = 1\n")
    (tmp_path / "syntax.py").write_text("def handler(:\n")
    with FunctionGraphEmulator(tmp_path, prestart_workers=0) as emu:
        client = Client(emu)
        missing = client.invoke("empty", {})
        assert missing.headers["X-Is-Func-Err"] == "true"
        assert "handler" in missing.json()["result"]
        broken = client.invoke("syntax", {})
        assert broken.headers["X-Is-Func-Err"] == "true"
        assert "SyntaxError" in broken.json()["result"]
