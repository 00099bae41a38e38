"""Asynchronous invocation: start, query status, cancel (PROTOCOL.md section 5)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from airflow_provider_fgs.protocol.errors import FunctionError, FunctionGraphApiError, InvalidRequestError
from airflow_provider_fgs.protocol.http import HttpRequest, functions_url, lower_headers, platform_error
from airflow_provider_fgs.protocol.invoke import encode_payload
from airflow_provider_fgs.protocol.urn import FunctionUrn

MAX_ASYNC_PAYLOAD_BYTES = 256 * 1024
PENDING_STATUSES = frozenset({"WAIT", "RUNNING"})
FAILED_STATUSES = frozenset({"FAIL", "DISCARD"})
SUCCESS_STATUS = "SUCCESS"


def build_async_invoke_request(endpoint: str, urn: FunctionUrn, payload: Any) -> HttpRequest:
    """Build ``POST .../{urn}/invocations-async``; the body is the event itself (at most 256 KB)."""
    return HttpRequest(
        method="POST",
        url=functions_url(endpoint, urn.project_id, str(urn), "invocations-async"),
        headers={"Content-Type": "application/json", "X-Project-Id": urn.project_id},
        body=encode_payload(payload, limit=MAX_ASYNC_PAYLOAD_BYTES),
    )


def _json_object(status_code: int, headers: Mapping[str, str], body: bytes, what: str) -> dict[str, Any]:
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
            request_id=lower_headers(headers).get("x-cff-request-id"),
        )
    return data


def parse_async_invoke_response(
    status_code: int, headers: Mapping[str, str], body: bytes, *, function: str
) -> str:
    """The request id of a started async invocation (answer 202 ``{"request_id": ...}``)."""
    data = _json_object(status_code, headers, body, f"async invoke of {function}")
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise FunctionGraphApiError(
            f"FunctionGraph accepted the async invoke of {function} but returned no request_id: {data!r}",
            http_status=status_code,
        )
    return request_id


def build_async_status_request(endpoint: str, urn: FunctionUrn, request_id: str) -> HttpRequest:
    """Build ``GET .../{urn}/async-invocations?request_id=ID``."""
    if not request_id or not isinstance(request_id, str):
        raise InvalidRequestError(f"Invalid async request_id {request_id!r}: expected a non-empty string")
    query = urlencode({"request_id": request_id})
    url = functions_url(endpoint, urn.project_id, str(urn), "async-invocations")
    return HttpRequest(method="GET", url=f"{url}?{query}", headers={"X-Project-Id": urn.project_id})


@dataclass(frozen=True)
class AsyncInvocationStatus:
    """
    The state of one asynchronous invocation.

    :param request_id: the invocation's request id.
    :param status: ``WAIT``, ``RUNNING``, ``SUCCESS``, ``FAIL`` or ``DISCARD``.
    :param error_code: the platform's error code for a failed invocation.
    :param error_message: the error message for a failed invocation.
    :param start_time: when it started, as reported.
    :param end_time: when it ended, as reported.
    """

    request_id: str
    status: str
    error_code: str | None = None
    error_message: str | None = None
    start_time: str | None = None
    end_time: str | None = None

    @property
    def is_pending(self) -> bool:
        return self.status in PENDING_STATUSES

    @property
    def is_failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def is_success(self) -> bool:
        return self.status == SUCCESS_STATUS

    def to_function_error(self, function: str) -> FunctionError:
        """The :class:`FunctionError` describing this failed (or discarded) invocation of ``function``."""
        detail = self.error_message or "no error message"
        return FunctionError(
            f"Async invocation {self.request_id} of {function} ended {self.status}: {detail} "
            f"(error code {self.error_code or 'unknown'})",
            request_id=self.request_id,
            error_code=self.error_code,
            error_message=self.error_message,
        )


def parse_async_status_response(
    status_code: int, headers: Mapping[str, str], body: bytes, *, request_id: str, function: str
) -> AsyncInvocationStatus | None:
    """The status record of ``request_id``, or ``None`` when the platform has none (yet)."""
    data = _json_object(status_code, headers, body, f"async status query of {function}")
    for item in data.get("invocations") or []:
        if isinstance(item, dict) and item.get("request_id") == request_id:
            return AsyncInvocationStatus(
                request_id=request_id,
                status=str(item.get("status", "")).upper(),
                error_code=_opt(item.get("error_code")),
                error_message=_opt(item.get("error_message")),
                start_time=_opt(item.get("start_time")),
                end_time=_opt(item.get("end_time")),
            )
    return None


CANCEL_MODES = ("force", "recursive")
"""The ``type`` of a cancel request: ``force`` ends the runtime, ``recursive`` its sub-function calls."""


def build_cancel_request(
    endpoint: str, urn: FunctionUrn, request_id: str, *, mode: str = "force"
) -> HttpRequest:
    """
    Build ``POST .../{urn}/cancel`` with ``{"request_id": ..., "type": mode}`` (CancelAsyncInvocation).

    Huawei's API reference ("Stopping an Asynchronous Invocation Request", functiongraph_06_0146_00_1)
    says only ``force`` is supported for now, and that the other requests running in the same function
    instance stop too.
    """
    if not request_id or not isinstance(request_id, str):
        raise InvalidRequestError(f"Invalid async request_id {request_id!r}: expected a non-empty string")
    if mode not in CANCEL_MODES:
        raise InvalidRequestError(f"Invalid cancel mode {mode!r}: expected one of {CANCEL_MODES}")
    return HttpRequest(
        method="POST",
        url=functions_url(endpoint, urn.project_id, str(urn), "cancel"),
        headers={"Content-Type": "application/json", "X-Project-Id": urn.project_id},
        body=json.dumps({"request_id": request_id, "type": mode}).encode("utf-8"),
    )


def parse_cancel_response(
    status_code: int, headers: Mapping[str, str], body: bytes, *, request_id: str, function: str
) -> None:
    """Accept a 2xx answer (the documented body is ``null``); raise the platform's error otherwise."""
    if status_code >= 400:
        raise platform_error(
            status_code, headers, body, what=f"cancel of async invocation {request_id} of {function}"
        )


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
