"""Synchronous invocation: build the request, parse the response (PROTOCOL.md section 3)."""

from __future__ import annotations

import base64
import binascii
import codecs
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

from airflow_provider_fgs.protocol.errors import FunctionError, InvalidRequestError
from airflow_provider_fgs.protocol.http import (
    GATEWAY_TIMEOUT_CODES,
    HttpRequest,
    functions_url,
    lower_headers,
    platform_error,
    request_id_of,
)
from airflow_provider_fgs.protocol.urn import FunctionUrn

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
SYNC_GATEWAY_TIMEOUT_S = 90.0
"""FunctionGraph's API gateway gives no synchronous answer after 90 s (the function may run on, up to
900 s): longer work belongs to an asynchronous invocation."""
ALLOWED_MEMORY_SIZES = (128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 8192, 10240)
LogType = Literal["tail", "none"]
RequestVersion = Literal["v0", "v1"]
LOG_TYPES: tuple[str, ...] = ("tail", "none")
REQUEST_VERSIONS: tuple[str, ...] = ("v0", "v1")
LOG_TAIL_BYTES = 2000
"""The platform returns at most the last 2000 bytes of a function's log."""


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
    :param log_type: ``"tail"`` to receive the last 2000 bytes of the log, ``"none"``/``None`` for no log.
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

    A TaskFlow task may return it: it goes through XCom with Airflow's versioned serialization
    (:meth:`serialize` / :meth:`deserialize`), and importing the provider allows the class for
    deserialization, so no ``[core] allowed_deserialization_classes`` entry is needed.

    :param status_code: HTTP status of the response.
    :param request_id: the invocation's request id.
    :param raw_result: the function's result as a string.
    :param result: the result JSON-decoded when it is JSON and decoding was asked for, else ``raw_result``.
    :param log: the decoded log tail (at most the last 2000 bytes, cut at a character boundary),
        ``None`` when none was returned or it could not be decoded.
    :param log_undecodable: the log header was present but not valid base64.
    :param summary: the parsed ``X-Cff-Invoke-Summary`` (empty when absent or unparsable).
    :param billing_duration_ms: billed duration in milliseconds, when reported.
    :param response_version: ``X-Cff-Response-Version``, when reported.
    :param function_error_code: ``X-Func-Err-Code``, when reported.
    :param is_function_error: whether the user's function failed.
    :param error_type: ``errorType`` of the function's failure payload.
    :param error_message: ``errorMessage`` of the function's failure payload.
    :param function: the invoked function's URN (or the name given), for messages.
    :param log_bytes: how many bytes of log came back, ``None`` when none did.
    :param log_truncated: the log is only its tail: the platform's limit of :data:`LOG_TAIL_BYTES`
        bytes was reached, or the tail starts inside a character.
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
    function: str | None = None
    log_bytes: int | None = None
    log_truncated: bool = False

    __version__: ClassVar[int] = 1

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

    def serialize(self) -> dict[str, Any]:
        """The XCom form (Airflow's serde calls it and records :attr:`__version__`)."""
        return asdict(self)

    @classmethod
    def deserialize(cls, data: dict[str, Any], version: int) -> InvocationResult:
        """Rebuild a result from :meth:`serialize`, written by this version or an older one."""
        if version > cls.__version__:
            raise TypeError(
                f"InvocationResult was serialized by a newer provider (version {version} > {cls.__version__})"
            )
        known = {item.name for item in fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in known})

    def raise_for_function_error(self, function: str | None = None) -> None:
        """
        Raise the :class:`FunctionError` the operator raises when the user's function failed.

        :param function: how to name the function in the message; by default :attr:`function`.
        :raises FunctionError: when ``is_function_error`` is set; otherwise nothing happens.
        """
        if self.is_function_error:
            raise self.to_function_error(function or self.function or "function")

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


def read_log_header(value: str | None) -> tuple[bytes | None, bool]:
    """The bytes of the base64 ``X-Cff-Function-Log`` header: (bytes, undecodable flag)."""
    if not value:
        return None, False
    data = value.strip()
    data += "=" * (-len(data) % 4)  # the header may be cut short of its padding
    try:
        return base64.b64decode(data, validate=True), False
    except (binascii.Error, ValueError):
        return None, True


def decode_log_tail(raw: bytes) -> tuple[str, bool]:
    """
    Decode the tail of a log at UTF-8 character boundaries: (text, whether it started mid-character).

    The platform keeps the last :data:`LOG_TAIL_BYTES` bytes, which may start (or end) inside a
    character: the partial character is dropped instead of showing a replacement character.
    """
    start = 0
    while start < min(3, len(raw)) and raw[start] & 0xC0 == 0x80:  # continuation bytes
        start += 1
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(raw[start:], final=False), start > 0


def decode_log(value: str | None) -> tuple[str | None, bool]:
    """Decode the base64 ``X-Cff-Function-Log`` header: (text, undecodable flag)."""
    raw, undecodable = read_log_header(value)
    if raw is None:
        return None, undecodable
    return decode_log_tail(raw)[0], False


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

    The function failed when ``X-Is-Func-Err`` is true, ``X-Func-Err-Code`` is not ``0`` or the v1
    ``status`` is not 2xx, whatever the HTTP status. Only when none of these is present does a result
    shaped like the runtime's failure payload (an object with ``errorMessage``) count as a failure.
    A 504 ``APIG.0201`` means the gateway cut the answer (see :data:`SYNC_GATEWAY_TIMEOUT_S`): the
    function may still be running.

    :param function: the URN or name, used in error messages.
    :param request_version: the version that was requested; used when the response does not say.
    :param deserialize: JSON-decode the result when it is JSON.
    """
    lowered = lower_headers(headers)
    error_code = lowered.get("x-func-err-code")
    is_func_err_header = lowered.get("x-is-func-err", "").strip().lower() == "true"
    func_err_code_set = error_code is not None and error_code.strip() not in ("", "0")
    if status_code >= 400 and not (is_func_err_header or func_err_code_set):
        error = platform_error(status_code, lowered, body, what=f"invoke of {function}")
        if error.error_code in GATEWAY_TIMEOUT_CODES:
            error.args = (
                f"{error} -- the API gateway gives no synchronous answer after "
                f"{SYNC_GATEWAY_TIMEOUT_S:g} s; the function may still be running (it was not re-sent). "
                "Use InvokeFunctionAsyncOperator for functions that run longer.",
            )
        raise error

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

    log_raw, log_undecodable = read_log_header(lowered.get("x-cff-function-log"))
    if log_raw is None and envelope_log is not None and not log_undecodable:
        log_raw = envelope_log.encode("utf-8")
    log, log_bytes, log_truncated = None, None, False
    if log_raw is not None:
        log, started_mid_character = decode_log_tail(log_raw)
        log_bytes = len(log_raw)
        log_truncated = started_mid_character or log_bytes >= LOG_TAIL_BYTES

    is_json, decoded = _decode_json(raw_result) if raw_result else (False, None)
    result = decoded if (deserialize and is_json) else (raw_result or None)
    status_failed = envelope_status is not None and not 200 <= envelope_status < 300
    # The headers (or the v1 status) decide when present: a successful result may well be a dict
    # with an "errorMessage" key. The payload's shape decides only when nothing else says anything.
    platform_said = "x-is-func-err" in lowered or error_code is not None or envelope_status is not None
    payload_is_error = isinstance(decoded, dict) and "errorMessage" in decoded
    failed = (
        is_func_err_header or func_err_code_set or status_failed or (payload_is_error and not platform_said)
    )
    error_type = error_message = None
    if failed and isinstance(decoded, dict) and payload_is_error:
        error_type = _str(decoded.get("errorType"))
        error_message = _str(decoded.get("errorMessage"))

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
        log_bytes=log_bytes,
        log_truncated=log_truncated,
        summary=summary,
        billing_duration_ms=billing,
        response_version=response_version,
        function_error_code=error_code,
        is_function_error=failed,
        error_type=error_type,
        error_message=error_message,
        function=function,
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
