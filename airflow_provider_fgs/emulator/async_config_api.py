"""``GET`` / ``PUT .../{urn}/async-invoke-config``: a function's asynchronous invocation settings.

Answers have the shape of the official SDK's ``ShowFunctionAsyncInvokeConfigResponse`` and
``UpdateFunctionAsyncInvokeConfigResponse``; the settings live in
:class:`~airflow_provider_fgs.emulator.async_settings.AsyncSettingsStore`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_fgs.emulator.async_settings import AsyncSettings
from airflow_provider_fgs.emulator.functions_api import (
    ApiRefusal,
    authenticated_body,
    found,
    json_object_body,
    urn_of_path,
)
from airflow_provider_fgs.emulator.registry import FunctionSpec
from airflow_provider_fgs.emulator.responses import json_response
from airflow_provider_fgs.emulator.state import EmulatorState
from airflow_provider_fgs.protocol.async_invoke_config import ASYNC_INVOKE_CONFIG_ACTION
from airflow_provider_fgs.protocol.urn import FunctionUrn

Handler = Callable[[EmulatorState, Request], Awaitable[Response]]
MAX_REQUEST_BYTES = 64 * 1024
MAX_EVENT_AGE_S = (1, 86_400)
MAX_RETRY_ATTEMPTS = (0, 8)
"""Accepted ranges: the union of what the SDK's request and response models document."""
DESTINATIONS = ("OBS", "SMN", "DIS", "FunctionGraph")

_ROUTE = re.compile(rf"/v2/(?P<project_id>[^/]+)/fgs/functions/(?P<urn>[^/]+)/{ASYNC_INVOKE_CONFIG_ACTION}/?")


def route(method: str, path: str) -> tuple[str, Handler | None, dict[str, str], str | None] | None:
    """(route name, handler or ``None`` for a wrong method, path params, allowed methods), or ``None``."""
    match = _ROUTE.fullmatch(path)
    if match is None:
        return None
    params = {"project_id": match["project_id"], "urn": match["urn"]}
    if method == "PUT":
        return "update_async_config", _update, params, "GET, PUT"
    return "async_config", (_show if method == "GET" else None), params, "GET, PUT"


def _function(state: EmulatorState, request: Request) -> tuple[FunctionUrn, FunctionSpec]:
    """The URN of the path and the function it names (400 / 404), without drawing an alias's version."""
    urn = urn_of_path(state, request)
    return urn, found(urn, state.registry.lookup)


def _answer(urn: FunctionUrn, settings: AsyncSettings) -> dict[str, Any]:
    return {
        "func_urn": str(urn),
        "max_async_event_age_in_seconds": settings.max_async_event_age_in_seconds,
        "max_async_retry_attempts": settings.max_async_retry_attempts,
        "destination_config": {key: dict(value) for key, value in settings.destination_config.items()},
        "created_time": settings.created_time,
        "last_modified": settings.last_modified,
        "enable_async_status_log": settings.enable_async_status_log,
    }


def _bounded(body: dict[str, Any], key: str, bounds: tuple[int, int]) -> int:
    value = body[key]
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiRefusal(400, "FSS.0400", f"Invalid {key} {value!r}: expected an integer in {low}..{high}")
    return value


def _destinations(value: Any) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict):
        raise ApiRefusal(400, "FSS.0400", "destination_config must be an object")
    checked: dict[str, dict[str, str]] = {}
    for key in ("on_success", "on_failure"):
        target = value.get(key)
        if target is None:
            continue
        destination = target.get("destination") if isinstance(target, dict) else None
        param = target.get("param") if isinstance(target, dict) else None
        if destination not in DESTINATIONS or not isinstance(param, str):
            raise ApiRefusal(
                400,
                "FSS.0400",
                f"Invalid destination_config.{key}: expected a destination in {DESTINATIONS} and a "
                "JSON string param",
            )
        checked[key] = {"destination": destination, "param": param}
    return checked


def _changes(body: dict[str, Any]) -> dict[str, Any]:
    """The settings a PUT body changes; unknown keys (e.g. the log group fields) are ignored."""
    changes: dict[str, Any] = {}
    if body.get("max_async_event_age_in_seconds") is not None:
        changes["max_async_event_age_in_seconds"] = _bounded(
            body, "max_async_event_age_in_seconds", MAX_EVENT_AGE_S
        )
    if body.get("max_async_retry_attempts") is not None:
        changes["max_async_retry_attempts"] = _bounded(body, "max_async_retry_attempts", MAX_RETRY_ATTEMPTS)
    enabled = body.get("enable_async_status_log")
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise ApiRefusal(
                400, "FSS.0400", f"Invalid enable_async_status_log {enabled!r}: expected a boolean"
            )
        changes["enable_async_status_log"] = enabled
    if body.get("destination_config") is not None:
        changes["destination_config"] = _destinations(body["destination_config"])
    return changes


async def _show(state: EmulatorState, request: Request) -> Response:
    await authenticated_body(state, request, 0)
    urn, spec = _function(state, request)
    return json_response(200, _answer(urn, state.async_settings.of(spec)))


async def _update(state: EmulatorState, request: Request) -> Response:
    body = await authenticated_body(state, request, MAX_REQUEST_BYTES)
    urn, spec = _function(state, request)
    changes = _changes(json_object_body(body))
    return json_response(200, _answer(urn, state.async_settings.update(spec, changes)))


__all__ = ["route"]
