"""Exception hierarchy of the provider.

Every exception subclasses :class:`FunctionGraphError`, itself an ``AirflowException``, so a task
that raises one fails with the message shown here. Messages never contain credentials.

Failures that no retry can fix (rejected credentials, invalid settings or input, a function, version
or alias that does not exist) also subclass Airflow's ``AirflowFailException``: the task fails at once
instead of using its Airflow retries, which would only repeat the failure (and, for a rejected AK/SK,
count towards the API gateway's lockout of the key).
"""

from __future__ import annotations

import inspect
from typing import Any

from airflow.sdk.exceptions import AirflowException

from airflow_provider_fgs.compat import AirflowFailException


class FunctionGraphError(AirflowException):
    """Base class of every error raised by the FunctionGraph provider."""


class PermanentError(FunctionGraphError, AirflowFailException):
    """A failure that retrying cannot fix: Airflow fails the task without using its retries."""


class InvalidRequestError(PermanentError, ValueError):
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


class AuthenticationError(FunctionGraphApiError, PermanentError):
    """IAM or the API gateway rejected the credentials. Never retried, by the hook or by Airflow."""


class CredentialCoolDownError(AuthenticationError):
    """
    The credentials were rejected recently on this host, so no request was sent with them.

    :param until: the end of the cool-down (UTC, ISO 8601).
    """

    def __init__(self, message: str, *, until: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.until = until


class NotFoundError(FunctionGraphApiError, PermanentError):
    """The function, version or alias (or the API route) does not exist (HTTP 404)."""


class RequestRejectedError(FunctionGraphApiError, PermanentError):
    """The platform rejected the request itself (HTTP 400, 413, ...): sending it again cannot help."""


class AsyncRecordNotFoundError(FunctionGraphApiError):
    """
    FunctionGraph kept answering that it has no status record of an asynchronous invocation.

    Records exist only when async status persistence is enabled on the function, only inside the
    query window, and only under the function (and version) that was invoked.
    """


class AsyncStatusPersistenceDisabledError(PermanentError):
    """
    A wait for an asynchronous invocation could never end: the function's async settings say that
    async status persistence (``enable_async_status_log``) is off, so FunctionGraph keeps no status
    record of its asynchronous invocations. Raised before the wait starts.

    :param message: human readable summary (built from the other parameters when not given).
    :param function_urn: the function's URN.
    :param request_id: the invocation a sensor was to wait for; ``None`` when none was started.
    """

    def __init__(
        self, message: str | None = None, *, function_urn: str, request_id: str | None = None
    ) -> None:
        if message is None:
            outcome = (
                "The invocation was not started."
                if request_id is None
                else f"Async invocation {request_id} may still run, but its end cannot be seen."
            )
            message = (
                f"Async status persistence is off for {function_urn} (its async settings answer "
                "enable_async_status_log=false): FunctionGraph keeps no status record of its "
                f"asynchronous invocations, so waiting for one could never end. {outcome} Turn it on "
                "in the FunctionGraph console (the function > Configuration > Asynchronous "
                'Notification > Edit > "Async status persistence"), or with the API: PUT '
                "/v2/{project_id}/fgs/functions/{function_urn}/async-invoke-config with "
                '{"enable_async_status_log": true}.'
            )
        super().__init__(message)
        self.function_urn = function_urn
        self.request_id = request_id


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


class InvocationOutcomeUnknownError(FunctionGraphError, AirflowFailException):
    """
    A deferred synchronous invocation may have run, and its outcome is unknown.

    Raised when a trigger was started again (a new triggerer after a restart or a failover, or a
    duplicate) and finds that an earlier run of it for the same try may already have sent the
    invocation, without a recorded outcome. The provider does not send it again, since a second call
    could run the function twice. The task fails without retrying (a retry would invoke again):
    clearing it is the operator's decision.

    :param message: human readable summary (built from the other parameters when not given).
    :param function_urn: the function's URN.
    :param try_number: the task's try number.
    :param request_id: the invocation's request id, when known.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        function_urn: str,
        try_number: int,
        request_id: str | None = None,
    ) -> None:
        if message is None:
            message = (
                f"The invocation of {function_urn} (try {try_number}) may have run: the trigger was "
                "started again (triggerer restart, failover or duplicate) after an earlier run of it "
                f"may have sent the request (request id {request_id or 'unknown'}), and its outcome "
                "is unknown. It was not sent again. Check the function's own records; to invoke it "
                "again, clear the task; for a function that is safe to run twice, set the "
                "connection's retry_sync_invoke to re-send in this case."
            )
        super().__init__(message)
        self.function_urn = function_urn
        self.try_number = try_number
        self.request_id = request_id


_EVENT_CLASSES: dict[str, type[FunctionGraphError]] = {
    cls.__name__: cls
    for cls in (
        FunctionGraphError,
        InvalidRequestError,
        PermanentError,
        FunctionGraphApiError,
        ThrottledError,
        ServiceUnavailableError,
        AuthenticationError,
        CredentialCoolDownError,
        NotFoundError,
        RequestRejectedError,
        AsyncRecordNotFoundError,
        AsyncStatusPersistenceDisabledError,
        FunctionError,
        InvocationOutcomeUnknownError,
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
