"""Exception hierarchy of the provider.

Every exception subclasses :class:`FunctionGraphError`, itself an ``AirflowException``, so a task
that raises one fails with the message shown here. Messages never contain credentials.
"""

from __future__ import annotations

import inspect
from typing import Any

from airflow.sdk.exceptions import AirflowException


class FunctionGraphError(AirflowException):
    """Base class of every error raised by the FunctionGraph provider."""


class InvalidRequestError(FunctionGraphError, ValueError):
    """Bad input caught before any network call (URN, payload, memory size, connection field)."""


class FunctionGraphApiError(FunctionGraphError):
    """
    FunctionGraph (or its API gateway) refused the request.

    :param message: human readable summary.
    :param http_status: HTTP status of the response, ``None`` when no response arrived.
    :param error_code: platform error code such as ``FSS.1051`` or ``APIG.0308``.
    :param error_msg: the platform's own error message.
    :param request_id: ``X-Cff-Request-Id`` / ``X-Request-Id`` of the response, when known.
    :param retry_after: seconds from a ``Retry-After`` header, when the platform sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        error_code: str | None = None,
        error_msg: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.error_msg = error_msg
        self.request_id = request_id
        self.retry_after = retry_after


class ThrottledError(FunctionGraphApiError):
    """The platform throttled the call (HTTP 429, ``FSS.0429`` / ``APIG.0308``); safe to retry later."""


class ServiceUnavailableError(FunctionGraphApiError):
    """The platform failed transiently (5xx, 408, or the connection could not be made)."""


class AuthenticationError(FunctionGraphApiError):
    """IAM or the API gateway rejected the credentials. Never retried in a loop."""


class AsyncRecordNotFoundError(FunctionGraphApiError):
    """
    FunctionGraph kept answering that it has no status record of an asynchronous invocation.

    Records exist only when async status persistence is enabled on the function, only inside the
    query window, and only under the function (and version) that was invoked.
    """


class FunctionError(FunctionGraphError):
    """
    The user's function ran and failed.

    :param message: human readable summary.
    :param request_id: the invocation's request id.
    :param error_code: ``X-Func-Err-Code`` of the response.
    :param error_type: ``errorType`` of the function's failure payload, when present.
    :param error_message: ``errorMessage`` of the function's failure payload, when present.
    :param log: the decoded tail of the function's log, when it was requested.
    :param payload: the function's decoded error payload (or raw result string).
    """

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        error_code: str | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
        log: str | None = None,
        payload: Any = None,
    ) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.error_code = error_code
        self.error_type = error_type
        self.error_message = error_message
        self.log = log
        self.payload = payload


_EVENT_CLASSES: dict[str, type[FunctionGraphError]] = {
    cls.__name__: cls
    for cls in (
        FunctionGraphError,
        InvalidRequestError,
        FunctionGraphApiError,
        ThrottledError,
        ServiceUnavailableError,
        AuthenticationError,
        AsyncRecordNotFoundError,
        FunctionError,
    )
}


def error_to_event(error: FunctionGraphError) -> dict[str, Any]:
    """
    A JSON-serializable form of ``error``, for trigger events (messages hold no secrets).

    A subclass defined elsewhere is recorded as its nearest class of this module.
    """
    cls = next(c for c in type(error).__mro__ if _EVENT_CLASSES.get(c.__name__) is c)
    accepted = inspect.signature(cls.__init__).parameters
    attributes = {name: value for name, value in vars(error).items() if name in accepted}
    return {"type": cls.__name__, "message": str(error), "attributes": attributes}


def error_from_event(data: dict[str, Any]) -> FunctionGraphError:
    """Rebuild an error from :func:`error_to_event` (an unknown type gives a :class:`FunctionGraphError`)."""
    cls = _EVENT_CLASSES.get(str(data.get("type")))
    message = str(data.get("message", "FunctionGraph call failed"))
    if cls is None:
        return FunctionGraphError(message)
    attributes = data.get("attributes") or {}
    return cls(message, **attributes) if attributes else cls(message)
