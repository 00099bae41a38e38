"""A function's configuration (``GET .../{urn}/config``), read for its timeout and its log stream.

The default read timeout of a synchronous invocation follows the function's own timeout: the answer
cannot come later than the function may run (plus start-up and network time), and never after the
gateway's cut (:data:`~airflow_provider_fgs.protocol.invoke.SYNC_GATEWAY_TIMEOUT_S`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from airflow_provider_fgs.protocol.http import HttpRequest, functions_url, platform_error
from airflow_provider_fgs.protocol.invoke import SYNC_GATEWAY_TIMEOUT_S
from airflow_provider_fgs.protocol.urn import FunctionUrn

SYNC_READ_MARGIN_S = 10
"""Seconds added to the function's timeout for a cold start, the platform and the network."""


def build_function_config_request(endpoint: str, urn: FunctionUrn) -> HttpRequest:
    """Build ``GET /v2/{project_id}/fgs/functions/{urn}/config`` (ShowFunctionConfig)."""
    return HttpRequest(
        method="GET",
        url=functions_url(endpoint, urn.project_id, str(urn), "config"),
        headers={"X-Project-Id": urn.project_id},
    )


@dataclass(frozen=True)
class FunctionConfig:
    """
    What the provider reads from a function's config.

    :param timeout: the function's timeout in seconds, ``None`` when absent.
    :param log_group_id: the LTS log group of the function's logs, when reported.
    :param log_stream_id: the LTS log stream of the function's logs, when reported.
    """

    timeout: float | None = None
    log_group_id: str | None = None
    log_stream_id: str | None = None


def parse_function_config(
    status_code: int, headers: Mapping[str, str], body: bytes, *, function: str
) -> FunctionConfig:
    """
    A ShowFunctionConfig answer; missing or odd fields are ``None``.

    The log group and stream come from ``log_config`` (``group_id``/``stream_id``), else from the flat
    ``log_group_id``/``log_stream_id`` of a function with a custom log configuration.
    """
    if status_code >= 400:
        raise platform_error(status_code, headers, body, what=f"config query of {function}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        return FunctionConfig()
    timeout = data.get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        timeout = None
    log_config = data.get("log_config")
    if not isinstance(log_config, dict):
        log_config = {}
    return FunctionConfig(
        timeout=None if timeout is None else float(timeout),
        log_group_id=_text(log_config.get("group_id")) or _text(data.get("log_group_id")),
        log_stream_id=_text(log_config.get("stream_id")) or _text(data.get("log_stream_id")),
    )


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
