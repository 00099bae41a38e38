"""A function's asynchronous invocation settings (``GET .../{urn}/async-invoke-config``).

Field names follow the official SDK's ``ShowFunctionAsyncInvokeConfigResponse``. What the provider
needs of it is ``enable_async_status_log`` ("async status persistence"): without it FunctionGraph
keeps no status record of the function's asynchronous invocations, so no wait for one can end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_fgs.protocol.errors import FunctionGraphApiError
from airflow_provider_fgs.protocol.http import (
    HttpRequest,
    functions_url,
    json_object_answer,
    lower_headers,
    request_id_of,
)
from airflow_provider_fgs.protocol.urn import FunctionUrn

ASYNC_INVOKE_CONFIG_ACTION = "async-invoke-config"


@dataclass(frozen=True)
class AsyncInvokeConfig:
    """
    A function's asynchronous invocation settings.

    :param func_urn: the function (version) the settings belong to, as answered.
    :param enable_async_status_log: whether async status persistence is on; ``None`` when the answer
        does not say (the field is missing or ``null``).
    :param max_async_event_age_in_seconds: how long a queued event may wait before it is dropped.
    :param max_async_retry_attempts: retries of a failed asynchronous invocation.
    :param last_modified: when the settings last changed, as answered.
    """

    func_urn: str | None
    enable_async_status_log: bool | None
    max_async_event_age_in_seconds: int | None = None
    max_async_retry_attempts: int | None = None
    last_modified: str | None = None


def build_async_invoke_config_request(endpoint: str, urn: FunctionUrn) -> HttpRequest:
    """Build ``GET .../{urn}/async-invoke-config`` (ShowFunctionAsyncInvokeConfig)."""
    return HttpRequest(
        method="GET",
        url=functions_url(endpoint, urn.project_id, str(urn), ASYNC_INVOKE_CONFIG_ACTION),
        headers={"Content-Type": "application/json", "X-Project-Id": urn.project_id},
    )


def parse_async_invoke_config(
    status_code: int, headers: Mapping[str, str], body: bytes, *, function: str
) -> AsyncInvokeConfig:
    """
    Read a ShowFunctionAsyncInvokeConfig answer.

    Strict where a wrong reading would mislead: a body that is not a JSON object, or an
    ``enable_async_status_log`` that is neither a boolean nor ``"true"``/``"false"``, raises
    :class:`FunctionGraphApiError`. Tolerant elsewhere: a missing flag is ``None`` (not stated), and
    other fields that are missing or odd are ``None``.
    """
    what = f"the async settings query of {function}"
    data = json_object_answer(status_code, headers, body, what)
    flag = data.get("enable_async_status_log")
    enabled = _flag(flag)
    if flag is not None and enabled is None:
        raise _unreadable(what, status_code, headers, f"enable_async_status_log={flag!r}, not true or false")
    return AsyncInvokeConfig(
        func_urn=_text(data.get("func_urn")),
        enable_async_status_log=enabled,
        max_async_event_age_in_seconds=_int(data.get("max_async_event_age_in_seconds")),
        max_async_retry_attempts=_int(data.get("max_async_retry_attempts")),
        last_modified=_text(data.get("last_modified")),
    )


def _unreadable(
    what: str, status_code: int, headers: Mapping[str, str], detail: str
) -> FunctionGraphApiError:
    return FunctionGraphApiError(
        f"FunctionGraph answered {what} with HTTP {status_code} and {detail}",
        http_status=status_code,
        request_id=request_id_of(lower_headers(headers)),
    )


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
