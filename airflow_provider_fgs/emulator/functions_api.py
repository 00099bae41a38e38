"""FunctionGraph routes: sync and async invoke, async status, cancel, list, config and log stream."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_fgs.emulator.async_store import AsyncRecord
from airflow_provider_fgs.emulator.auth import AuthFailure, authenticate
from airflow_provider_fgs.emulator.registry import FunctionConfigError, LookupFailure, ResolvedFunction
from airflow_provider_fgs.emulator.responses import BodyTooLarge, fss_error, json_response, read_body
from airflow_provider_fgs.emulator.state import EmulatorState
from airflow_provider_fgs.protocol.async_invoke import MAX_ASYNC_PAYLOAD_BYTES, parse_query_time
from airflow_provider_fgs.protocol.errors import InvalidRequestError
from airflow_provider_fgs.protocol.invoke import ALLOWED_MEMORY_SIZES, LOG_TAIL_BYTES, MAX_PAYLOAD_BYTES
from airflow_provider_fgs.protocol.signing import parse_authorization
from airflow_provider_fgs.protocol.urn import FunctionUrn

T = TypeVar("T")

_background: set[asyncio.Task[Any]] = set()


class ApiRefusal(Exception):
    """Answer the request with a platform error."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.response = fss_error(status, error_code, message)


@dataclass(frozen=True)
class Call:
    """An authenticated request for one function."""

    request: Request
    body: bytes
    urn: FunctionUrn
    function: ResolvedFunction


def _lower_headers(request: Request) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]}


async def authenticated_body(state: EmulatorState, request: Request, limit: int) -> bytes:
    """Read the body (413 over ``limit``) and check the credentials (401)."""
    try:
        body = await read_body(request, limit)
    except BodyTooLarge as err:
        raise ApiRefusal(413, "FSS.0413", str(err)) from None
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    headers = _lower_headers(request)
    parsed = parse_authorization(headers.get("authorization", "")) if "x-auth-token" not in headers else None
    access_key = parsed.access_key if parsed is not None and parsed.access_key in state.access_keys else None
    if access_key is not None and state.lockouts.access_key_locked(access_key):
        state.stats.count_rejection("locked")
        raise ApiRefusal(
            401, "APIG.0301", "Incorrect IAM authentication information: the access key is locked"
        )
    try:
        result = authenticate(
            tokens=state.tokens,
            access_keys=state.access_keys,
            method=request.method,
            raw_path=raw_path.decode("latin-1"),
            query_string=request.scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            temporary=state.credentials,
        )
    except AuthFailure as err:
        state.stats.count_rejection("signature" if parsed is not None else "token")
        if access_key is not None:
            state.lockouts.signature_failed(access_key)
        raise ApiRefusal(401, "APIG.0301", str(err)) from None
    if isinstance(result, str):
        state.lockouts.signature_accepted(result)
    return body


def check_project(state: EmulatorState, project_id: str) -> None:
    if project_id != state.project_id:
        raise ApiRefusal(
            403,
            "FSS.0403",
            f"Project {project_id!r} is not served here (this emulator serves {state.project_id})",
        )


def urn_of_path(state: EmulatorState, request: Request) -> FunctionUrn:
    """The function URN of a ``/v2/{project_id}/fgs/functions/{urn}/...`` path, checked (400 / 403 / 404)."""
    params = request.path_params
    check_project(state, params["project_id"])
    try:
        urn = FunctionUrn.parse(params["urn"])
    except InvalidRequestError as err:
        raise ApiRefusal(400, "FSS.1309", str(err)) from None
    if urn.project_id != state.project_id or urn.region != state.region:
        raise ApiRefusal(404, "FSS.1051", f"Not found the function: {urn.unqualified}")
    return urn


def json_object_body(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (400 ``FSS.0400`` otherwise)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiRefusal(400, "FSS.0400", f"The request body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ApiRefusal(400, "FSS.0400", "The request body must be a JSON object")
    return data


def resolve(state: EmulatorState, project_id: str, urn_text: str) -> tuple[FunctionUrn, ResolvedFunction]:
    """Parse the URN path segment and find the function (400 / 404)."""
    check_project(state, project_id)
    try:
        urn = FunctionUrn.parse(urn_text)
    except InvalidRequestError as err:
        raise ApiRefusal(400, "FSS.1309", str(err)) from None
    if urn.project_id != project_id or urn.region != state.region:
        raise ApiRefusal(
            404,
            "FSS.1051",
            f"Not found the function: {urn.unqualified} (this emulator serves region {state.region}, "
            f"project {state.project_id})",
        )
    return urn, found(urn, state.registry.resolve)


def found(urn: FunctionUrn, lookup: Callable[[FunctionUrn], T]) -> T:
    """``lookup(urn)`` from the registry; an unknown function is 404, a bad settings file 500."""
    try:
        return lookup(urn)
    except LookupFailure as err:
        raise ApiRefusal(404, err.error_code, err.message) from None
    except FunctionConfigError as err:
        raise ApiRefusal(500, "FSS.0500", f"Bad settings file of function {urn.name}: {err}") from None


async def prepare(state: EmulatorState, request: Request, limit: int) -> Call:
    body = await authenticated_body(state, request, limit)
    params = request.path_params
    urn, function = resolve(state, params["project_id"], params["urn"])
    if body.strip():
        try:
            json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise ApiRefusal(406, "FSS.0406", f"The request body is not valid JSON: {err}") from None
    return Call(request, body, urn, function)


def _memory(request: Request, function: ResolvedFunction) -> int | None:
    """
    The ``X-Cff-Instance-Memory`` of the call: 406 ``FSS.0406`` when invalid; applied only when the
    function has dynamic memory enabled (otherwise the configured memory is used, silently).
    """
    value = request.headers.get("x-cff-instance-memory")
    if value is None or value == "":
        return None
    if not value.strip().isdigit() or int(value) not in ALLOWED_MEMORY_SIZES:
        raise ApiRefusal(
            406,
            "FSS.0406",
            f"Invalid X-Cff-Instance-Memory {value[:40]!r}: expected one of {ALLOWED_MEMORY_SIZES}",
        )
    return int(value) if function.spec.dynamic_memory else None


async def invoke(state: EmulatorState, request: Request) -> Response:
    """
    ``POST .../invocations``: run the function and wait for it, at most the gateway's limit.

    Past ``state.gateway_timeout`` the answer is 504 ``APIG.0201`` "Backend timeout." (what Huawei's
    API gateway answers when its backend is too slow) while the function keeps running.
    """
    call = await prepare(state, request, MAX_PAYLOAD_BYTES)
    memory = _memory(request, call.function)
    version = (request.headers.get("x-cff-request-version") or "v0").strip().lower()
    if version not in ("v0", "v1"):
        raise ApiRefusal(
            400, "FSS.0400", f"Invalid X-CFF-Request-Version {version[:20]!r}: expected v0 or v1"
        )
    want_log = (request.headers.get("x-cff-log-type") or "").strip().lower() == "tail"
    request_id = str(uuid.uuid4())
    running = asyncio.get_running_loop().create_task(
        state.invoker.invoke(call.function, call.body, request_id, memory_size=memory)
    )
    _background.add(running)  # kept alive past a gateway cut, like the real function
    running.add_done_callback(_background.discard)
    finished, _ = await asyncio.wait({running}, timeout=state.gateway_timeout)
    if not finished:
        return fss_error(504, "APIG.0201", "Backend timeout.")
    done = running.result()
    tail = done.log.encode("utf-8")[-LOG_TAIL_BYTES:]
    summary = {  # the keys the API reference documents
        "duration": round(done.duration_ms, 3),
        "billingDuration": done.billing_duration_ms,
        "memorySize": done.memory_size,
        "memoryUsed": round(done.memory_used_mb, 3),
    }
    headers = {
        "X-Cff-Request-Id": request_id,
        "X-Request-Id": request_id,
        "X-Cff-Invoke-Summary": json.dumps(summary),
        "X-CFF-Billing-Duration": str(done.billing_duration_ms),
        "X-Cff-Response-Version": version,
        "X-Func-Err-Code": done.error_code,
        "X-Is-Func-Err": "true" if done.failed else "false",
    }
    if want_log:
        headers["X-Cff-Function-Log"] = base64.b64encode(tail).decode("ascii")
    if version == "v0":
        return Response(done.result.encode("utf-8"), 200, headers, media_type="application/json")
    envelope = {
        "request_id": request_id,
        "result": done.result,
        "log": tail.decode("utf-8", errors="replace") if want_log else "",
        "status": 500 if done.failed else 200,
    }
    return json_response(200, envelope, headers)


async def invoke_async(state: EmulatorState, request: Request) -> Response:
    """``POST .../invocations-async``: start the function, answer 202 at once."""
    call = await prepare(state, request, MAX_ASYNC_PAYLOAD_BYTES)
    request_id = str(uuid.uuid4())
    record = AsyncRecord(
        request_id=request_id,
        function=call.function.spec.name,
        status_logged=state.async_settings.status_log_enabled(call.function.spec),
    )
    state.async_records.add(record)

    async def run() -> None:
        try:
            done = await state.invoker.invoke(
                call.function,
                call.body,
                request_id,
                on_start=lambda worker: state.async_records.mark_running(record, worker),
            )
            state.async_records.finish(
                record,
                ok=not done.failed,
                error_code=int(done.error_code),
                error_message=done.error_message,
                result=done.result,
            )
        except Exception as err:  # e.g. the pool closed while shutting down
            state.async_records.finish(record, ok=False, error_code=500, error_message=str(err), result="")

    task = asyncio.get_running_loop().create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return json_response(202, {"request_id": request_id}, {"X-Cff-Request-Id": request_id})


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise ApiRefusal(
            400, "FSS.0400", f"Invalid {name} {value[:20]!r}: expected an integer in {low}..{high}"
        )
    return int(value)


def _query_time(request: Request, name: str) -> float | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return parse_query_time(value).timestamp()
    except ValueError as err:
        raise ApiRefusal(400, "FSS.0400", f"Invalid {name}: {err}") from None


async def async_status(state: EmulatorState, request: Request) -> Response:
    """
    ``GET .../async-invocations``: status records, filtered by request_id / status and by the window
    ``query_begin_time`` (default: one hour before now) to ``query_end_time``, paged by marker/limit.
    Only invocations accepted while the function had async status persistence on have records.
    """
    await authenticated_body(state, request, 0)
    _, function = resolve(state, request.path_params["project_id"], request.path_params["urn"])
    request_id = request.query_params.get("request_id")
    status = request.query_params.get("status")
    limit = _int_param(request, "limit", 100, 1, 500)
    marker = _int_param(request, "marker", 0, 0, 10**9)
    now = state.now()
    begin = _query_time(request, "query_begin_time")
    end = _query_time(request, "query_end_time")
    begin = now - state.async_query_window if begin is None else begin
    end = now if end is None else end
    if request_id:
        record = state.async_records.get(request_id)
        records = [record] if record is not None and record.function == function.spec.name else []
    else:
        records = state.async_records.of_function(function.spec.name)
    # The query times have whole seconds: compare the acceptance time at that precision.
    records = [r for r in records if r.status_logged and begin <= int(r.submitted) <= end]
    if status:
        records = [r for r in records if r.status == status.upper()]
    page = records[marker : marker + limit]
    items: list[dict[str, Any]] = [r.as_dict() for r in page]
    next_marker = marker + len(page) if marker + len(page) < len(records) else len(records)
    return json_response(200, {"invocations": items, "count": len(records), "next_marker": next_marker})


CANCEL_TYPES = ("recursive", "force")


async def cancel(state: EmulatorState, request: Request) -> Response:
    """
    ``POST .../cancel`` with ``{"request_id": ..., "type": "recursive"|"force"}``: stop a pending or
    running async invocation; answers 200 ``null``.

    The API reference (CancelAsyncInvocation) says that with 1:N functions (one instance serving N
    requests at once) the other requests running in the same instance are stopped too. The emulator
    runs every request in a process of its own and does not track which would share an instance, so
    for a function with ``max_requests_per_instance`` above 1 a ``force`` cancel stops all of its other
    running async invocations (the worst case); with the default of 1 it stops only the one named.
    """
    call = await prepare(state, request, 64 * 1024)
    try:
        data = json.loads(call.body or b"{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ApiRefusal(400, "FSS.0400", "The body must be a JSON object with a request_id")
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise ApiRefusal(400, "FSS.0400", "The body must be a JSON object with a request_id")
    kind = data.get("type", "recursive")
    if kind not in CANCEL_TYPES:
        raise ApiRefusal(
            400, "FSS.0400", f"Invalid cancel type {str(kind)[:20]!r}: expected one of {CANCEL_TYPES}"
        )
    record = state.async_records.get(request_id)
    if record is None or record.function != call.function.spec.name:
        raise ApiRefusal(404, "FSS.1051", f"Not found the async invocation {request_id[:64]!r}")
    if not state.async_records.cancel(record):
        raise ApiRefusal(
            400, "FSS.0400", f"The async invocation already finished with status {record.status}"
        )
    if kind == "force" and call.function.spec.max_requests_per_instance > 1:
        for other in state.async_records.running_of(call.function.spec.name):
            state.async_records.cancel(other)
    return json_response(200, None)


def _function_info(state: EmulatorState, name: str) -> dict[str, Any] | None:
    try:
        spec = state.registry.get(name)
    except FunctionConfigError:
        return None
    if spec is None:
        return None
    urn = FunctionUrn.from_parts(
        region=state.region, project_id=state.project_id, name=name, package=spec.package
    )
    return {
        "func_urn": urn.unqualified,
        "func_name": name,
        "package": spec.package,
        "runtime": "Python3.11",
        "handler": f"{name}.{spec.handler}",
        "timeout": math.ceil(spec.timeout),  # whole seconds, an integer in the SDK's model
        "memory_size": spec.memory_size,
        "version": "latest",
    }


def _log_stream(state: EmulatorState, name: str) -> dict[str, str]:
    """The LTS log group and stream of a function, as lts-log-detail reports them (stable per name)."""
    return {
        "group_name": f"functiongraph.log.group.{state.project_id[:8]}",
        "group_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fgs-emulator/{state.project_id}/log-group")),
        "stream_name": name,
        "stream_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fgs-emulator/{state.project_id}/{name}")),
    }


async def list_functions(state: EmulatorState, request: Request) -> Response:
    """``GET /v2/{project_id}/fgs/functions``: every function (one page)."""
    await authenticated_body(state, request, 0)
    check_project(state, request.path_params["project_id"])
    infos = [info for name in state.registry.names() if (info := _function_info(state, name))]
    return json_response(200, {"functions": infos, "next_marker": 0, "count": len(infos)})


async def function_config(state: EmulatorState, request: Request) -> Response:
    """``GET .../{urn}/config``: one function's settings."""
    await authenticated_body(state, request, 0)
    _, function = resolve(state, request.path_params["project_id"], request.path_params["urn"])
    return json_response(200, _function_info(state, function.spec.name))


async def lts_log_detail(state: EmulatorState, request: Request) -> Response:
    """``GET .../{urn}/lts-log-detail``: the function's LTS log group and stream."""
    await authenticated_body(state, request, 0)
    _, function = resolve(state, request.path_params["project_id"], request.path_params["urn"])
    return json_response(200, _log_stream(state, function.spec.name))
