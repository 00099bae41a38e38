"""What an invocation reads of its function: the timeout (``GET .../{urn}/config``) and the log stream.

The default read timeout of a synchronous invocation follows the function's own timeout: the answer
cannot come later than the function may run (plus start-up and network time), and never after the
gateway's cut (:data:`~airflow_provider_fgs.protocol.invoke.SYNC_GATEWAY_TIMEOUT_S`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from airflow_provider_fgs.protocol.functions import FunctionConfig
from airflow_provider_fgs.protocol.http import HttpRequest, functions_url, platform_error
from airflow_provider_fgs.protocol.invoke import SYNC_GATEWAY_TIMEOUT_S
from airflow_provider_fgs.protocol.urn import FunctionUrn

SYNC_READ_MARGIN_S = 10
"""Seconds added to the function's timeout for a cold start, the platform and the network."""


def parse_function_config(
    status_code: int, headers: Mapping[str, str], body: bytes, *, function: str
) -> FunctionConfig:
    """
    A ShowFunctionConfig answer, read leniently: a body that is not a JSON object gives a config whose
    fields are all ``None`` (the invocation then waits the connection's read timeout).
    """
    if status_code >= 400:
        raise platform_error(status_code, headers, body, what=f"config query of {function}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    return FunctionConfig.from_dict(data if isinstance(data, dict) else {})


def build_log_stream_request(endpoint: str, urn: FunctionUrn) -> HttpRequest:
    """Build ``GET .../{urn}/lts-log-detail`` ("Querying the Log Group and Stream of a Function")."""
    return HttpRequest(
        method="GET",
        url=functions_url(endpoint, urn.project_id, str(urn), "lts-log-detail"),
        headers={"X-Project-Id": urn.project_id},
    )


def parse_log_stream(
    status_code: int, headers: Mapping[str, str], body: bytes, *, function: str
) -> tuple[str, str] | None:
    """``(group_id, stream_id)`` of an lts-log-detail answer, ``None`` when either is missing."""
    if status_code >= 400:
        raise platform_error(status_code, headers, body, what=f"log stream query of {function}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    group_id, stream_id = _text(data.get("group_id")), _text(data.get("stream_id"))
    return (group_id, stream_id) if group_id and stream_id else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def sync_read_timeout(function_timeout: float) -> float:
    """How long to wait for the answer of a function that may run ``function_timeout`` seconds."""
    return min(function_timeout, SYNC_GATEWAY_TIMEOUT_S) + SYNC_READ_MARGIN_S
