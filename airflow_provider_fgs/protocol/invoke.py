"""Synchronous invocation: build the request, parse the response (PROTOCOL.md section 3)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from airflow_provider_fgs.protocol.errors import FunctionError, InvalidRequestError
from airflow_provider_fgs.protocol.http import (
    HttpRequest,
    functions_url,
    lower_headers,
    platform_error,
    request_id_of,
)
from airflow_provider_fgs.protocol.urn import FunctionUrn

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
SYNC_GATEWAY_TIMEOUT_S = 90
"""No answer to a synchronous invocation arrives after 90 s: the API gateway cuts it (PROTOCOL.md §3)."""
ALLOWED_MEMORY_SIZES = (128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 8192, 10240)
LogType = Literal["tail", "none"]
RequestVersion = Literal["v0", "v1"]
LOG_TYPES: tuple[str, ...] = ("tail", "none")
REQUEST_VERSIONS: tuple[str, ...] = ("v0", "v1")


def encode_payload(payload: Any, *, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """
    Encode an event as the JSON request body.

    ``None`` is an empty object; ``str`` and ``bytes`` must already hold JSON; anything else is
    JSON-encoded. Raises :class:`InvalidRequestError` for non-JSON input or a body over ``limit``.
    """
    if payload is None:
        body = b"{}"
    elif isinstance(payload, bytes | bytearray | memoryview):
        body = bytes(payload)
        _require_json(body, "bytes")
    elif isinstance(payload, str):
        body = payload.encode("utf-8")
        _require_json(body, "str")
    else:
        try:
            body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as err:
            raise InvalidRequestError(
                f"Payload of type {type(payload).__name__} cannot be encoded as JSON: {err}"
            ) from None
    if len(body) > limit:
        raise InvalidRequestError(
            f"Payload is {len(body)} bytes once encoded; FunctionGraph accepts at most {limit} bytes"
        )
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _require_json(body: bytes, kind: str) -> None:
    try:
        json.loads(body, parse_constant=_no_constant)  # Python accepts NaN and Infinity; JSON does not
    except (ValueError, UnicodeDecodeError) as err:
        preview = body[:80].decode("utf-8", errors="replace")
        raise InvalidRequestError(f"Payload {kind} is not valid JSON ({err}): {preview!r}") from None


def validate_options(log_type: str | None, request_version: str, instance_memory: int | str | None) -> None:
    """Check the invoke options, naming the bad value."""
    if log_type is not None and log_type not in LOG_TYPES:
        raise InvalidRequestError(f"Invalid log_type {log_type!r}: expected one of {LOG_TYPES} or None")
    if request_version not in REQUEST_VERSIONS:
        raise InvalidRequestError(
            f"Invalid request_version {request_version!r}: expected one of {REQUEST_VERSIONS}"
        )
    if instance_memory is not None:
        try:
            memory = int(instance_memory)
        except (TypeError, ValueError):
            memory = -1
        if isinstance(instance_memory, float) and instance_memory != memory:
            memory = -1  # int() would quietly turn 256.5 into 256
        if memory not in ALLOWED_MEMORY_SIZES:
            raise InvalidRequestError(
                f"Invalid instance_memory {instance_memory!r}: expected one of {ALLOWED_MEMORY_SIZES} (MB)"
            )


def build_invoke_request(
    endpoint: str,
    urn: FunctionUrn,
    payload: Any,
    *,
    log_type: str | None = "tail",
    request_version: str = "v1",
    instance_memory: int | str | None = None,
) -> HttpRequest:
    """
    Build ``POST /v2/{project_id}/fgs/functions/{urn}/invocations``.

    :param endpoint: FunctionGraph base URL, e.g. ``https://functiongraph.ap-southeast-1.myhuaweicloud.com``.
    :param log_type: ``"tail"`` to receive the last 4 KB of the log, ``"none"``/``None`` for no log.
    :param request_version: ``"v1"`` for the JSON envelope, ``"v0"`` for the raw return value.
    :param instance_memory: instance memory in MB for this call, from :data:`ALLOWED_MEMORY_SIZES`.
    """
    validate_options(log_type, request_version, instance_memory)
    headers = {
        "Content-Type": "application/json",
        "X-Project-Id": urn.project_id,
        "X-Cff-Log-Type": "tail" if log_type == "tail" else "",
        "X-CFF-Request-Version": request_version,
    }
    if instance_memory is not None:
        headers["X-Cff-Instance-Memory"] = str(int(instance_memory))
    return HttpRequest(
        method="POST",
        url=functions_url(endpoint, urn.project_id, str(urn), "invocations"),
        headers=headers,
        body=encode_payload(payload),
    )


@dataclass(frozen=True)
class InvocationResult:
    """
    The outcome of a synchronous invocation that FunctionGraph accepted.

    :param status_code: HTTP status of the response.
    :param request_id: the invocation's request id.
    :param raw_result: the function's result as a string.
    :param result: the result JSON-decoded when it is JSON and decoding was asked for, else ``raw_result``.
    :param log: the decoded log tail, ``None`` when none was returned or it could not be decoded.
    :param log_undecodable: the log header was present but not valid base64.
    :param summary: the parsed ``X-Cff-Invoke-Summary`` (empty when absent or unparsable).
    :param billing_duration_ms: billed duration in milliseconds, when reported.
    :param response_version: ``X-Cff-Response-Version``, when reported.
    :param function_error_code: ``X-Func-Err-Code``, when reported.
    :param is_function_error: whether the user's function failed.
    :param error_type: ``errorType`` of the function's failure payload.
    :param error_message: ``errorMessage`` of the function's failure payload.
    """

    status_code: int
    request_id: str | None
    raw_result: str
    result: Any
    log: str | None = None
    log_undecodable: bool = False
    summary: dict[str, Any] = field(default_factory=dict)
    billing_duration_ms: int | None = None
    response_version: str | None = None
    function_error_code: str | None = None
    is_function_error: bool = False
    error_type: str | None = None
    error_message: str | None = None

    @property
    def duration_ms(self) -> float | None:
        """Run time in milliseconds from the invoke summary, when reported."""
        value = self.summary.get("duration")
        return float(value) if isinstance(value, int | float) else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable form (for trigger events); ``result`` is re-derived by :meth:`from_dict`."""
        data = asdict(self)
        del data["result"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, deserialize: bool) -> InvocationResult:
        """Rebuild a result from :meth:`to_dict`, decoding it as :func:`parse_invoke_response` does."""
        fields = {name: value for name, value in data.items() if name != "result"}
        return cls(**fields, result=decode_result(fields.get("raw_result", ""), deserialize=deserialize))

    def to_function_error(self, function: str) -> FunctionError:
        """The :class:`FunctionError` describing this failed invocation of ``function``."""
        detail = ": ".join(part for part in (self.error_type, self.error_message) if part)
        if not detail:
            detail = self.raw_result[:500] or "no error payload"
        message = (
            f"Function {function} failed: {detail} "
            f"(request id {self.request_id or 'unknown'}, error code {self.function_error_code or 'unknown'})"
        )
        return FunctionError(
            message,
            request_id=self.request_id,
            error_code=self.function_error_code,
            error_type=self.error_type,
            error_message=self.error_message,
            log=self.log,
            payload=self.result,
        )


def decode_log(value: str | None) -> tuple[str | None, bool]:
    """Decode the base64 ``X-Cff-Function-Log`` header: (text, undecodable flag)."""
    if not value:
        return None, False
    data = value.strip()
    data += "=" * (-len(data) % 4)  # the header may be cut short of its padding
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None, True
    # The platform keeps the last 2000 bytes, which may start or end mid-character.
    return raw.decode("utf-8", errors="replace"), False


def parse_summary(value: str | None) -> dict[str, Any]:
    """Parse ``X-Cff-Invoke-Summary`` leniently: a dict, or empty when absent or not a JSON object."""
    if not value:
        return {}
    try:
        data = json.loads(value)
    except ValueError:
        return {}
    if isinstance(data, str):  # sometimes JSON-encoded twice
        try:
            data = json.loads(data)
        except ValueError:
            return {}
    return data if isinstance(data, dict) else {}


def _to_int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _decode_json(raw: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(raw)
    except ValueError:
        return False, None


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def decode_result(raw_result: str, *, deserialize: bool) -> Any:
    """The result as callers see it: JSON-decoded when asked and possible, the raw string otherwise."""
    is_json, decoded = _decode_json(raw_result) if (raw_result and deserialize) else (False, None)
    return decoded if is_json else (raw_result or None)


def parse_invoke_response(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    function: str = "function",
    request_version: str = "v1",
    deserialize: bool = True,
) -> InvocationResult:
    """
    Parse the answer to an invoke request.

    A refusal by the platform raises its typed :class:`FunctionGraphApiError`; a failure of the user's
    function does not raise: it is reported by ``is_function_error`` so the caller decides.

    :param function: the URN or name, used in error messages.
    :param request_version: the version that was requested; used when the response does not say.
    :param deserialize: JSON-decode the result when it is JSON.
    """
    lowered = lower_headers(headers)
    error_code = lowered.get("x-func-err-code")
    is_func_err_header = lowered.get("x-is-func-err", "").strip().lower() == "true"
    func_err_code_set = error_code is not None and error_code.strip() not in ("", "0")
    if status_code >= 400 and not (is_func_err_header or func_err_code_set):
        raise platform_error(status_code, lowered, body, what=f"invoke of {function}")

    response_version = lowered.get("x-cff-response-version")
    raw_result = _body_text(body)
    envelope_log: str | None = None
    envelope_status: int | None = None
    request_id = request_id_of(lowered)
    if (response_version or request_version) == "v1":
        ok, envelope = _decode_json(raw_result)
        if ok and isinstance(envelope, dict) and "result" in envelope:
            result_value = envelope.get("result")
            raw_result = (
                result_value
                if isinstance(result_value, str)
                else json.dumps(result_value, ensure_ascii=False)
            )
            if result_value is None:
                raw_result = ""
            log_value = envelope.get("log")
            envelope_log = log_value if isinstance(log_value, str) and log_value else None
            envelope_status = _to_int(envelope.get("status"))
            request_id = request_id or _str(envelope.get("request_id"))

    log, log_undecodable = decode_log(lowered.get("x-cff-function-log"))
    if log is None and not log_undecodable:
        log = envelope_log

    is_json, decoded = _decode_json(raw_result) if raw_result else (False, None)
    result = decoded if (deserialize and is_json) else (raw_result or None)
    error_type = error_message = None
    payload_is_error = isinstance(decoded, dict) and "errorMessage" in decoded
    if isinstance(decoded, dict) and payload_is_error:
        error_type = _str(decoded.get("errorType"))
        error_message = _str(decoded.get("errorMessage"))
    status_failed = envelope_status is not None and not 200 <= envelope_status < 300

    summary = parse_summary(lowered.get("x-cff-invoke-summary"))
    billing = _to_int(lowered.get("x-cff-billing-duration"))
    if billing is None:
        billing = _to_int(summary.get("billingDuration"))
    return InvocationResult(
        status_code=status_code,
        request_id=request_id,
        raw_result=raw_result,
        result=result,
        log=log,
        log_undecodable=log_undecodable,
        summary=summary,
        billing_duration_ms=billing,
        response_version=response_version,
        function_error_code=error_code,
        is_function_error=is_func_err_header or func_err_code_set or status_failed or payload_is_error,
        error_type=error_type,
        error_message=error_message,
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
