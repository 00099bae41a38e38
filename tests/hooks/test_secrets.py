"""Secrets of a connection never reach logs, exception text or repr, and are registered with the masker."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from airflow.sdk.log import redact

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
from airflow_provider_fgs.protocol.errors import FunctionGraphError
from tests.hooks.conftest import ConnFactory


def test_secrets_stay_out_of_logs_errors_and_repr(
    emu: Any, make_conn: ConnFactory, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    password_hook = FunctionGraphHook(make_conn("password"))
    password_hook.invoke("hello", {"name": "x"})
    emu.revoke_tokens()
    emu.inject_fault("throttle", count=1)
    password_hook.invoke("hello")  # 401 -> refresh, then a throttled retry: all logged
    token = password_hook._tokens.token()
    secrets = ["demo-password", token, "demo-secret-key", "temporary-sts-token", "wrong-password-xyz"]

    aksk_hook = FunctionGraphHook(make_conn("aksk", security_token="temporary-sts-token"))
    texts.append(str(aksk_hook.test_connection()))  # the emulator rejects the unknown security token or not
    token_hook = FunctionGraphHook(make_conn("token", token=token))
    token_hook.invoke("hello")
    bad_hook = FunctionGraphHook(make_conn("password", password="wrong-password-xyz"))
    with pytest.raises(FunctionGraphError) as info:
        bad_hook.invoke("hello")
    texts.append(str(info.value))
    texts.append(str(bad_hook.test_connection()))
    for hook in (password_hook, aksk_hook, token_hook, bad_hook):
        texts.extend([repr(hook), repr(hook.settings), repr(hook._tokens)])

    captured = capsys.readouterr()
    texts.extend([caplog.text, captured.out, captured.err])
    everything = "\n".join(texts)
    assert "Retrying invoke of" in everything  # the retry path was logged and is part of the check
    for secret in secrets:
        assert secret not in everything
        assert redact(f"before {secret} after") == "before *** after"
