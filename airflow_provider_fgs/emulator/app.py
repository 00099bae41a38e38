"""The emulator's ASGI application: routing, request counting, fault injection, error safety net."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from airflow_provider_fgs.emulator import async_config_api, credentials_api, functions_api, management_api
from airflow_provider_fgs.emulator.functions_api import ApiRefusal
from airflow_provider_fgs.emulator.iam import IamError, issue_token
from airflow_provider_fgs.emulator.responses import BodyTooLarge, fss_error, json_response, read_body
from airflow_provider_fgs.emulator.state import EmulatorState

log = logging.getLogger(__name__)
Handler = Callable[[EmulatorState, Request], Awaitable[Response]]

_FUNCTION_ROUTE = re.compile(r"/v2/(?P<project_id>[^/]+)/fgs/functions/(?P<urn>[^/]+)/(?P<action>[^/]+)/?")
_LIST_ROUTE = re.compile(r"/v2/(?P<project_id>[^/]+)/fgs/functions/?")
_TOKEN_ROUTE = re.compile(r"/v3/auth/tokens/?")
# action -> (method, route name, handler)
_ACTIONS: dict[str, tuple[str, str, Handler]] = {
    "invocations": ("POST", "invoke", functions_api.invoke),
    "invocations-async": ("POST", "invoke_async", functions_api.invoke_async),
    "async-invocations": ("GET", "async_status", functions_api.async_status),
    "cancel": ("POST", "cancel", functions_api.cancel),
    "config": ("GET", "config", functions_api.function_config),
    "lts-log-detail": ("GET", "log_stream", functions_api.lts_log_detail),
}
MAX_TOKEN_REQUEST_BYTES = 64 * 1024
STATS_PATH = "/_emulator/stats"


async def _token(state: EmulatorState, request: Request) -> Response:
    if request.method == "DELETE":
        subject = request.headers.get("x-subject-token")
        if state.tokens.validate(request.headers.get("x-auth-token")) is None:
            return json_response(
                401, IamError(401, "The request you have made requires authentication.").body()
            )
        state.tokens.revoke(subject)
        return Response(status_code=204)
    try:
        body = await read_body(request, MAX_TOKEN_REQUEST_BYTES)
    except BodyTooLarge as err:
        return json_response(
            413, {"error": {"code": 413, "message": str(err), "title": "Request Entity Too Large"}}
        )
    try:
        try:
            data: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise IamError(400, "The request body is not valid JSON.") from None
        token, response = issue_token(
            state.tokens, state.iam, data, request.headers.get("x-auth-token"), state.lockouts
        )
    except IamError as err:
        if err.status == 401:
            state.stats.count_rejection("locked" if "locked" in err.message else "password")
        return json_response(err.status, err.body())
    return json_response(201, response, {"X-Subject-Token": token})


async def _health(state: EmulatorState, request: Request) -> Response:
    return json_response(200, {"status": "ok", "region": state.region, "project_id": state.project_id})


async def _stats(state: EmulatorState, request: Request) -> Response:
    """The emulator's counters (a test control, not a FunctionGraph API), read before this request."""
    return json_response(
        200,
        {
            **state.stats.snapshot(),
            "locks": state.lockouts.locks_triggered,
            "credentials_issued": dict(state.credentials.issued),
        },
    )


def route_of(method: str, path: str) -> tuple[str, Handler | None, dict[str, str], str | None]:
    """(route name, handler or None when the method is wrong, path params, allowed method)."""
    managed = management_api.route(method, path) or async_config_api.route(method, path)
    if managed is not None:
        return managed
    match = _FUNCTION_ROUTE.fullmatch(path)
    if match:
        action = _ACTIONS.get(match["action"])
        if action is None:
            return "unknown", None, {}, None
        allowed, name, handler = action
        params = {"project_id": match["project_id"], "urn": match["urn"]}
        return name, (handler if method == allowed else None), params, allowed
    match = _LIST_ROUTE.fullmatch(path)
    if match:
        return (
            "list",
            (functions_api.list_functions if method == "GET" else None),
            dict(match.groupdict()),
            "GET",
        )
    credential_route = credentials_api.ROUTES.get(path)
    if credential_route is not None:
        allowed, name, handler = credential_route
        return name, (handler if method == allowed else None), {}, allowed
    if _TOKEN_ROUTE.fullmatch(path):
        return "token", (_token if method in ("POST", "DELETE") else None), {}, "POST, DELETE"
    if path in ("/", "/health"):
        return "health", (_health if method == "GET" else None), {}, "GET"
    if path == STATS_PATH:
        return "stats", (_stats if method == "GET" else None), {}, "GET"
    return "unknown", None, {}, None


def _function_name(urn_text: str) -> str | None:
    parts = urn_text.split(":")
    return parts[6] if len(parts) >= 7 else None


def _abort_connection(send: Send) -> bool:
    """Close the client connection without answering (uvicorn's transport); ``False`` if unavailable."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return False
    transport.abort()
    return True


# A cut JSON envelope, then markup and a byte that is not UTF-8: what a broken proxy might pass on.
GARBAGE_BODY = b'{"request_id": "cut-short", "result": <html><body>Bad gateway \xff</body></html>'


def _headers_of(response: Response, *, drop: tuple[str, ...] = ()) -> dict[str, str]:
    skip = {"content-length", *drop}
    return {name: value for name, value in response.headers.items() if name not in skip}


def _garbled(response: Response) -> Response:
    """``response``'s headers (the function's request id, summary, log) with a 200 garbage body."""
    return Response(GARBAGE_BODY, 200, _headers_of(response, drop=("content-type",)), media_type="text/html")


def _with_bad_log(response: Response) -> Response:
    """``response`` with its base64 log header cut to a length no base64 text can have."""
    headers = _headers_of(response)
    log = headers.get("x-cff-function-log") or "TG9nIGxpbmU="
    headers["x-cff-function-log"] = log[:-3]  # base64 is 4k characters long: 4k - 3 is never valid
    return Response(response.body, response.status_code, headers)


def _function_failed(response: Response) -> bool:
    return response.headers.get("x-is-func-err") == "true"


def _error_shape(kind: str, response: Response) -> Response:
    """A function failure answered in another plausible shape (see :class:`Fault`)."""
    if not _function_failed(response):
        return response
    if kind == "error_500":
        return Response(response.body, 500, _headers_of(response))
    headers = _headers_of(response, drop=("x-is-func-err",))
    body = bytes(response.body)
    if kind == "error_bare":
        headers.pop("x-func-err-code", None)
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = None
        if isinstance(envelope, dict):
            envelope.pop("status", None)
            body = json.dumps(envelope).encode("utf-8")
    return Response(body, response.status_code, headers)


async def _send_truncated(response: Response, send: Send) -> None:
    """Send the status line, the headers (full Content-Length) and half of the body, then close."""
    body = bytes(response.body)
    await send(
        {"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers}
    )
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.close()  # unlike abort(), close() flushes what was written: the client reads a cut body
        await asyncio.sleep(0)
        await asyncio.sleep(0)


class EmulatorApp:
    """
    ASGI application of the emulator.

    :param state: the emulator's shared state.
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            response = await self._dispatch(scope, receive, send)
            if response is not None:
                await response(scope, receive, tracking_send)
        except Exception:
            log.exception("Emulator error while serving %s %s", scope.get("method"), scope.get("path"))
            if not started:
                response = fss_error(500, "FSS.0500", "Internal error of the emulator; see its log")
                await response(scope, receive, tracking_send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> Response | None:
        method, path = scope["method"], scope["path"]
        name, handler, params, allowed = route_of(method, path)
        if name != "stats":
            self.state.stats.count_request(name)
        if name == "unknown":
            return fss_error(
                404, "APIG.0101", f"The API does not exist or has not been published: {method} {path[:200]}"
            )
        if handler is None:
            return fss_error(
                405,
                "FSS.0405",
                f"Method {method} is not allowed here; use {allowed}",
                headers={"Allow": allowed or ""},
            )
        fault = None
        if "urn" in params or name in ("list", "token"):
            function = _function_name(params["urn"]) if "urn" in params else None
            fault = self.state.faults.take(function, name)
            if fault is not None:
                if fault.delay and fault.kind != "stall":
                    await asyncio.sleep(fault.delay)
                if fault.kind == "drop" and _abort_connection(send):
                    await asyncio.sleep(0)  # let the server see the closed connection before we return
                    await asyncio.sleep(0)
                    return None
                retry = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                if fault.kind == "throttle":
                    return fss_error(429, "FSS.0429", "Request throttled (injected fault)", headers=retry)
                if fault.kind in ("unavailable", "drop"):
                    return fss_error(503, "FSS.0503", "Service unavailable (injected fault)", headers=retry)
                if fault.kind == "invalid_token":
                    return fss_error(403, "FSS.0403", "invalid token")
        scope["path_params"] = params
        try:
            response = await handler(self.state, Request(scope, receive))
        except ApiRefusal as refusal:
            response = refusal.response
        if fault is not None and fault.kind == "stall":
            await asyncio.sleep(fault.delay)  # the connection stays open and silent, as in a long call
        if fault is not None and fault.kind == "drop_after" and _abort_connection(send):
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return None
        if fault is not None and fault.kind == "truncate":
            await _send_truncated(response, send)
            return None
        if fault is not None and fault.kind == "garbage":
            return _garbled(response)
        if fault is not None and fault.kind == "bad_log":
            return _with_bad_log(response)
        if fault is not None and fault.kind in ("error_500", "error_code_only", "error_bare"):
            return _error_shape(fault.kind, response)
        return response

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


__all__ = ["EmulatorApp", "route_of"]
