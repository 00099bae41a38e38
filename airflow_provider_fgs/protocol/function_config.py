"""A function's configuration (``GET .../{urn}/config``), read for its timeout.

The default read timeout of a synchronous invocation follows the function's own timeout: the answer
cannot come later than the function may run (plus start-up and network time), and never after the
gateway's cut (:data:`~airflow_provider_fgs.protocol.invoke.SYNC_GATEWAY_TIMEOUT_S`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

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


def parse_function_timeout(
    status_code: int, headers: Mapping[str, str], body: bytes, *, function: str
) -> float | None:
    """The ``timeout`` (seconds) of a ShowFunctionConfig answer; ``None`` when it holds no usable one."""
    if status_code >= 400:
        raise platform_error(status_code, headers, body, what=f"config query of {function}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    timeout = data.get("timeout") if isinstance(data, dict) else None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        return None
    return float(timeout)


def sync_read_timeout(function_timeout: float) -> float:
    """How long to wait for the answer of a function that may run ``function_timeout`` seconds."""
    return min(function_timeout, SYNC_GATEWAY_TIMEOUT_S) + SYNC_READ_MARGIN_S
