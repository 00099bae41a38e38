"""Transport-neutral HTTP pieces: the request both transports send, and platform error decoding."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from airflow_provider_fgs.protocol.errors import (
    AuthenticationError,
    FunctionGraphApiError,
    NotFoundError,
    RequestRejectedError,
    ServiceUnavailableError,
    ThrottledError,
)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset({"FSS.1115", "FSS.1169"})
# The API gateway in front of service endpoints reports its errors as APIGW.* as well as APIG.*.
THROTTLE_CODES = frozenset({"FSS.0429", "APIG.0308", "APIGW.0308"})
AUTH_CODES = frozenset({"APIG.0301", "APIGW.0301", "APIG.0303", "APIGW.0303"})
GATEWAY_TIMEOUT_CODES = frozenset({"APIG.0201", "APIGW.0201"})
TOKEN_REJECTED_403_CODES = frozenset({"FSS.0403", *AUTH_CODES})
# The request itself is wrong (bad body or URN, payload too large): the same request fails again.
REJECTED_STATUS = frozenset({400, 405, 411, 413, 414, 415, 422})
_MAX_BODY_IN_MESSAGE = 300

Response = tuple[int, Mapping[str, str], bytes]
"""``(status, headers, body)`` of an HTTP exchange, as either transport returns it."""


@dataclass(frozen=True)
class HttpRequest:
    """A fully built request (without authentication headers), sent by either transport."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def functions_url(endpoint: str, project_id: str, urn: str, action: str) -> str:
    """``{endpoint}/v2/{project_id}/fgs/functions/{urn}/{action}`` with the URN encoded as one segment."""
    return f"{endpoint.rstrip('/')}/v2/{project_id}/fgs/functions/{quote(urn, safe='')}/{action}"


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A plain dict of the headers with lower-cased names."""
    return {name.lower(): value for name, value in headers.items()}


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The platform's request id from lower-cased response headers, when present."""
    return headers.get("x-cff-request-id") or headers.get("x-request-id")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date); ``None`` if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    """(error_code, error_msg) from an FSS/APIG body or a Keystone-style IAM body."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    if "error_code" in data or "error_msg" in data:
        return _str_or_none(data.get("error_code")), _str_or_none(data.get("error_msg"))
    error = data.get("error")
    if isinstance(error, dict):  # Keystone: {"error": {"code": 401, "message": ..., "title": ...}}
        return _str_or_none(error.get("code")), _str_or_none(error.get("message") or error.get("title"))
    return None, None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def is_token_rejected(status_code: int, body: bytes) -> bool:
    """
    Whether the answer refuses the token itself: any 401, or a 403 whose code is ``FSS.0403`` (or an
    APIG/APIGW auth code) and whose message names the token ("invalid token"). A 403 for missing
    permissions is not a token rejection: fetching a new token would not help.
    """
    if status_code == 401:
        return True
    if status_code != 403:
        return False
    error_code, error_msg = _error_fields(body)
    return error_code in TOKEN_REJECTED_403_CODES and "token" in (error_msg or "").lower()


def platform_error(
    status_code: int, headers: Mapping[str, str], body: bytes, *, what: str
) -> FunctionGraphApiError:
    """
    Turn a refused request into the matching typed exception (not raised).

    :param headers: response headers (any case).
    :param what: what was attempted, for the message, e.g. ``"invoke of urn:fss:..."``.
    """
    lowered = lower_headers(headers)
    error_code, error_msg = _error_fields(body)
    request_id = request_id_of(lowered)
    if error_msg is None and body:
        error_msg = body[:_MAX_BODY_IN_MESSAGE].decode("utf-8", errors="replace").strip() or None
    message = f"FunctionGraph refused {what}: HTTP {status_code}"
    if error_code:
        message += f" {error_code}"
    if error_msg:
        message += f": {error_msg}"
    if request_id:
        message += f" (request id {request_id})"
    kwargs: dict[str, Any] = {
        "http_status": status_code,
        "error_code": error_code,
        "error_msg": error_msg,
        "request_id": request_id,
        "retry_after": parse_retry_after(lowered.get("retry-after")),
    }
    if status_code == 429 or error_code in THROTTLE_CODES:
        return ThrottledError(message, **kwargs)
    if status_code in RETRYABLE_STATUS or error_code in RETRYABLE_CODES:
        return ServiceUnavailableError(message, **kwargs)
    if status_code == 401 or error_code in AUTH_CODES:
        return AuthenticationError(message, **kwargs)
    if status_code == 404:
        return NotFoundError(message, **kwargs)
    if status_code in REJECTED_STATUS:
        return RequestRejectedError(message, **kwargs)
    return FunctionGraphApiError(message, **kwargs)


def json_object_answer(
    status_code: int, headers: Mapping[str, str], body: bytes, what: str
) -> dict[str, Any]:
    """
    The JSON object of a successful answer; a refusal raises :func:`platform_error`'s exception, and an
    answer that is not a JSON object a :class:`FunctionGraphApiError` quoting its start.

    :param what: what was asked, for the message, e.g. ``"async invoke of urn:fss:..."``.
    """
    if status_code >= 400:
        raise platform_error(status_code, headers, body, what=what)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        preview = body[:200].decode("utf-8", errors="replace")
        raise FunctionGraphApiError(
            f"FunctionGraph answered {what} with HTTP {status_code} and a body that is not a JSON object: "
            f"{preview!r}",
            http_status=status_code,
            request_id=request_id_of(lower_headers(headers)),
        )
    return data
