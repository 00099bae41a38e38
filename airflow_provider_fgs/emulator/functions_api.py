"""FunctionGraph routes: sync and async invoke, async status, cancel, list, config and log stream."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from airflow_provider_fgs.emulator.async_store import AsyncRecord
from airflow_provider_fgs.emulator.auth import AuthFailure, authenticate
from airflow_provider_fgs.emulator.registry import FunctionConfigError, LookupFailure, ResolvedFunction
from airflow_provider_fgs.emulator.responses import BodyTooLarge, fss_error, json_response, read_body
from airflow_provider_fgs.emulator.state import EmulatorState
from airflow_provider_fgs.protocol.async_invoke import MAX_ASYNC_PAYLOAD_BYTES
from airflow_provider_fgs.protocol.errors import InvalidRequestError
from airflow_provider_fgs.protocol.invoke import ALLOWED_MEMORY_SIZES, MAX_PAYLOAD_BYTES
from airflow_provider_fgs.protocol.urn import FunctionUrn

LOG_TAIL_BYTES = 2000
_background: set[asyncio.Task[None]] = set()


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
    try:
        authenticate(
            tokens=state.tokens,
            access_keys=state.access_keys,
            method=request.method,
            raw_path=raw_path.decode("latin-1"),
            query_string=request.scope.get("query_string", b"").decode("latin-1"),
            headers=_lower_headers(request),
            body=body,
        )
    except AuthFailure as err:
        raise ApiRefusal(401, "APIG.0301", str(err)) from None
    return body


def check_project(state: EmulatorState, project_id: str) -> None:
    if project_id != state.project_id:
        raise ApiRefusal(
            403,
            "FSS.0403",
            f"Project {project_id!r} is not served here (this emulator serves {state.project_id})",
        )


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
    try:
        return urn, state.registry.resolve(urn)
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
            raise ApiRefusal(400, "FSS.0400", f"The request body is not valid JSON: {err}") from None
    return Call(request, body, urn, function)


def _memory(request: Request) -> int | None:
    value = request.headers.get("x-cff-instance-memory")
    if value is None or value == "":
        return None
    if not value.strip().isdigit() or int(value) not in ALLOWED_MEMORY_SIZES:
        raise ApiRefusal(
            400,
            "FSS.0400",
            f"Invalid X-Cff-Instance-Memory {value[:40]!r}: expected one of {ALLOWED_MEMORY_SIZES}",
        )
    return int(value)


async def invoke(state: EmulatorState, request: Request) -> Response:
    """``POST .../invocations``: run the function and wait for it."""
    call = await prepare(state, request, MAX_PAYLOAD_BYTES)
    memory = _memory(request)
    version = (request.headers.get("x-cff-request-version") or "v0").strip().lower()
    if version not in ("v0", "v1"):
        raise ApiRefusal(
            400, "FSS.0400", f"Invalid X-CFF-Request-Version {version[:20]!r}: expected v0 or v1"
        )
    want_log = (request.headers.get("x-cff-log-type") or "").strip().lower() == "tail"
    request_id = str(uuid.uuid4())
    done = await state.invoker.invoke(call.function, call.body, request_id, memory_size=memory)
    tail = done.log.encode("utf-8")[-LOG_TAIL_BYTES:]
    client = request.client
    summary = {
        "funcName": call.function.spec.name,
        "remoteAddress": f"{client.host}:{client.port}" if client else "",
        "duration": round(done.duration_ms, 3),
        "billingDuration": done.billing_duration_ms,
        "bootTime": 0,
        "podName": "fgs-emulator",
        "invokeType": "invoke",
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
    record = AsyncRecord(request_id=request_id, function=call.function.spec.name)
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
                error_code=done.error_code,
                error_message=done.error_message,
                result=done.result,
            )
        except Exception as err:  # e.g. the pool closed while shutting down
            state.async_records.finish(
                record, ok=False, error_code="FSS.0500", error_message=str(err), result=""
            )

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


async def async_status(state: EmulatorState, request: Request) -> Response:
    """``GET .../async-invocations``: status records, filtered by request_id / status."""
    await authenticated_body(state, request, 0)
    _, function = resolve(state, request.path_params["project_id"], request.path_params["urn"])
    request_id = request.query_params.get("request_id")
    status = request.query_params.get("status")
    limit = _int_param(request, "limit", 100, 1, 500)
    marker = _int_param(request, "marker", 0, 0, 10**9)
    if request_id:
        record = state.async_records.get(request_id)
        records = [record] if record is not None and record.function == function.spec.name else []
    else:
        records = state.async_records.of_function(function.spec.name)
    if status:
        records = [r for r in records if r.status == status.upper()]
    page = records[marker : marker + limit]
    items: list[dict[str, Any]] = [r.as_dict() for r in page]
    next_marker = marker + len(page) if marker + len(page) < len(records) else 0
    return json_response(200, {"invocations": items, "count": len(records), "next_marker": next_marker})


async def cancel(state: EmulatorState, request: Request) -> Response:
    """``POST .../cancel`` with ``{"request_id": ...}``: stop a pending or running async invocation."""
    call = await prepare(state, request, 64 * 1024)
    try:
        request_id = json.loads(call.body or b"{}").get("request_id")
    except AttributeError:
        request_id = None
    if not isinstance(request_id, str) or not request_id:
        raise ApiRefusal(400, "FSS.0400", "The body must be a JSON object with a request_id")
    record = state.async_records.get(request_id)
    if record is None or record.function != call.function.spec.name:
        raise ApiRefusal(404, "FSS.1051", f"Not found the async invocation {request_id[:64]!r}")
    if not state.async_records.cancel(record):
        raise ApiRefusal(
            400, "FSS.0400", f"The async invocation already finished with status {record.status}"
        )
    return json_response(200, {"request_id": request_id, "status": "DISCARD"})


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
        "timeout": spec.timeout,
        "memory_size": spec.memory_size,
        "version": "latest",
        "versions": ["latest", *spec.versions],
        "aliases": dict(spec.aliases),
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
