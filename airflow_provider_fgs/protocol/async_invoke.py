"""Asynchronous invocation: start, query status, cancel (PROTOCOL.md section 5)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from airflow_provider_fgs.protocol.errors import (
    AsyncRecordNotFoundError,
    FunctionError,
    FunctionGraphApiError,
    InvalidRequestError,
)
from airflow_provider_fgs.protocol.http import (
    HttpRequest,
    functions_url,
    json_object_answer,
    platform_error,
)
from airflow_provider_fgs.protocol.invoke import encode_payload
from airflow_provider_fgs.protocol.urn import FunctionUrn

MAX_ASYNC_PAYLOAD_BYTES = 256 * 1024
PENDING_STATUSES = frozenset({"WAIT", "RUNNING"})
FAILED_STATUSES = frozenset({"FAIL", "DISCARD"})
SUCCESS_STATUS = "SUCCESS"
KNOWN_STATUSES = PENDING_STATUSES | FAILED_STATUSES | {SUCCESS_STATUS}
DEFAULT_QUERY_WINDOW_S = 3600.0
"""Without ``query_begin_time`` a status query searches only the last hour."""
QUERY_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
"""``query_begin_time`` / ``query_end_time`` format (UTC), as the API reference gives it."""
QUERY_TIME_MARGIN_S = 300.0
"""Subtracted from the recorded start time, for clock skew between the client and the platform."""
STATUS_PAGE_LIMIT = 100
MAX_STATUS_PAGES = 20
DEFAULT_MISSING_RECORD_TIMEOUT_S = 300.0
"""How long a request id may stay without a status record before waiting for it fails."""


def build_async_invoke_request(endpoint: str, urn: FunctionUrn, payload: Any) -> HttpRequest:
    """Build ``POST .../{urn}/invocations-async``; the body is the event itself (at most 256 KB)."""
    return HttpRequest(
        method="POST",
        url=functions_url(endpoint, urn.project_id, str(urn), "invocations-async"),
        headers={"Content-Type": "application/json", "X-Project-Id": urn.project_id},
        body=encode_payload(payload, limit=MAX_ASYNC_PAYLOAD_BYTES),
    )


def parse_async_invoke_response(
    status_code: int, headers: Mapping[str, str], body: bytes, *, function: str
) -> str:
    """The request id of a started async invocation (answer 202 ``{"request_id": ...}``)."""
    data = json_object_answer(status_code, headers, body, f"async invoke of {function}")
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise FunctionGraphApiError(
            f"FunctionGraph accepted the async invoke of {function} but returned no request_id: {data!r}",
            http_status=status_code,
        )
    return request_id


def format_query_time(when: datetime) -> str:
    """``when`` as a ``query_begin_time`` value (UTC, whole seconds)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime(QUERY_TIME_FORMAT)


def parse_query_time(value: str) -> datetime:
    """
    A UTC datetime from a query or record time: ``2024-01-01T00:00:00`` with optional fraction and
    ``Z`` or offset.

    :raises ValueError: naming the value.
    """
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"Invalid time {value[:40]!r}: expected YYYY-MM-DDTHH:mm:ss (UTC)") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _query_time_arg(value: str, what: str) -> datetime:
    try:
        return parse_query_time(value)
    except ValueError as err:
        raise InvalidRequestError(f"Invalid {what}: {err}") from None


def query_begin_time_for(started: datetime | str | None) -> str | None:
    """
    The ``query_begin_time`` to find an invocation started at ``started`` (minus a margin for clock
    skew); ``None`` (the platform's one-hour default) when the start is unknown.
    """
    if started is None or (isinstance(started, str) and started.strip() in ("", "None")):
        return None  # "None": a templated XCom pull that found nothing
    when = _query_time_arg(started, "start time") if isinstance(started, str) else started
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return format_query_time(when - timedelta(seconds=QUERY_TIME_MARGIN_S))


def build_async_status_request(
    endpoint: str,
    urn: FunctionUrn,
    request_id: str,
    *,
    query_begin_time: str | None = None,
    marker: int | None = None,
    limit: int | None = None,
) -> HttpRequest:
    """
    Build ``GET .../{urn}/async-invocations?request_id=ID[&query_begin_time=T][&marker=M&limit=L]``.

    :param query_begin_time: start of the search window (``YYYY-MM-DDTHH:mm:ss`` UTC); without it the
        platform searches only the last hour.
    :param marker: start position of the page (an integer from the previous page's ``next_marker``).
    :param limit: records per page (at most 500).
    """
    if not request_id or not isinstance(request_id, str):
        raise InvalidRequestError(f"Invalid async request_id {request_id!r}: expected a non-empty string")
    params: dict[str, str] = {"request_id": request_id}
    if query_begin_time:
        params["query_begin_time"] = format_query_time(_query_time_arg(query_begin_time, "query_begin_time"))
    if marker is not None:
        params["marker"] = str(marker)
        params["limit"] = str(limit or STATUS_PAGE_LIMIT)
    elif limit is not None:
        params["limit"] = str(limit)
    query = urlencode(params)
    url = functions_url(endpoint, urn.project_id, str(urn), "async-invocations")
    return HttpRequest(method="GET", url=f"{url}?{query}", headers={"X-Project-Id": urn.project_id})


@dataclass(frozen=True)
class AsyncInvocationStatus:
    """
    The state of one asynchronous invocation.

    :param request_id: the invocation's request id.
    :param status: ``WAIT``, ``RUNNING``, ``SUCCESS``, ``FAIL`` or ``DISCARD``.
    :param error_code: the platform's error code (an integer in the official SDK's model, 0 unless
        the invocation failed; kept as text).
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


@dataclass(frozen=True)
class AsyncStatusPage:
    """
    One page of a status query.

    :param status: the record of the request id asked for, ``None`` when this page has none.
    :param next_marker: the marker of the next page, ``None`` when this was the last one.
    """

    status: AsyncInvocationStatus | None
    next_marker: int | None = None


def parse_async_status_page(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    request_id: str,
    function: str,
    marker: int | None = None,
) -> AsyncStatusPage:
    """
    Read a status query answer: the record of ``request_id`` and where the next page starts.

    ``count`` and ``next_marker`` are read as integers or numeric strings (the SDK's model and the
    API reference differ). A record whose status is missing or unknown is an error, never success.
    """
    what = f"async status query of {function}"
    data = json_object_answer(status_code, headers, body, what)
    items = data.get("invocations") or []
    if not isinstance(items, list):
        items = []
    for item in items:
        if isinstance(item, dict) and item.get("request_id") == request_id:
            status = str(item.get("status") or "").strip().upper()
            if status not in KNOWN_STATUSES:
                raise FunctionGraphApiError(
                    f"FunctionGraph answered the {what} for {request_id} with an unknown status "
                    f"{item.get('status')!r}: expected one of {sorted(KNOWN_STATUSES)}",
                    http_status=status_code,
                    request_id=request_id,
                )
            return AsyncStatusPage(
                AsyncInvocationStatus(
                    request_id=request_id,
                    status=status,
                    error_code=_opt(item.get("error_code")),
                    error_message=_opt(item.get("error_message")),
                    start_time=_opt(item.get("start_time")),
                    end_time=_opt(item.get("end_time")),
                )
            )
    next_marker = _int_or_none(data.get("next_marker"))
    count = _int_or_none(data.get("count"))
    current = marker or 0
    more = (
        bool(items)
        and next_marker is not None
        and next_marker > current
        and (count is None or next_marker < count)
    )
    return AsyncStatusPage(None, next_marker if more else None)


def parse_async_status_response(
    status_code: int, headers: Mapping[str, str], body: bytes, *, request_id: str, function: str
) -> AsyncInvocationStatus | None:
    """The status record of ``request_id`` on this page, or ``None`` when the platform has none (yet)."""
    return parse_async_status_page(
        status_code, headers, body, request_id=request_id, function=function
    ).status


class MissingRecordGuard:
    """
    Fails the wait for an async invocation whose status record stays missing.

    A request id without a record is not proof that the invocation is pending: records exist only
    when async status persistence is enabled on the function, only inside the query window, and only
    under the function that was invoked.

    :param request_id: the invocation's request id.
    :param function: the URN or name, for the message.
    :param timeout: seconds without a record before :meth:`check` raises.
    :param query_begin_time: the window start that was sent, for the message.
    :param clock: seconds (monotonic by default; wall-clock when ``missing_since`` is a wall time).
    :param missing_since: when the record was first found missing, if known from before (a sensor
        rescheduled between pokes).
    """

    def __init__(
        self,
        *,
        request_id: str,
        function: str,
        timeout: float = DEFAULT_MISSING_RECORD_TIMEOUT_S,
        query_begin_time: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        missing_since: float | None = None,
    ) -> None:
        self.request_id = request_id
        self.function = function
        self.timeout = timeout
        self.query_begin_time = query_begin_time
        self._clock = clock
        self._missing_since = missing_since

    def check(self, status: AsyncInvocationStatus | None) -> None:
        """Note one status answer; raise :class:`AsyncRecordNotFoundError` once missing for too long."""
        if status is not None:
            self._missing_since = None
            return
        now = self._clock()
        if self._missing_since is None:
            self._missing_since = now
        waited = now - self._missing_since
        if waited >= self.timeout:
            window = (
                f"from {self.query_begin_time} UTC"
                if self.query_begin_time
                else "the last hour only (no query_begin_time was known)"
            )
            raise AsyncRecordNotFoundError(
                f"FunctionGraph has no status record of async invocation {self.request_id} of "
                f"{self.function} after {waited:.0f} s. Likely causes: async status persistence is "
                f"disabled on the function (it is off by default; enable it in the function's "
                f"asynchronous settings); the record is outside the query window ({window}); or the "
                f"request id belongs to another function, version or alias than the one queried.",
                request_id=self.request_id,
            )


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
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
