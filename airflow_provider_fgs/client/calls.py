"""The calls the client sends: a built request with how to read its answer, made once for both transports.

Everything here is pure: a :class:`PreparedCall` is built from the connection's settings and a resolved
URN, without I/O, and sent by :mod:`~airflow_provider_fgs.client.flow` over either transport.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from airflow_provider_fgs.client.settings import FunctionGraphSettings
from airflow_provider_fgs.protocol import async_invoke, async_invoke_config, function_config, functions
from airflow_provider_fgs.protocol.async_invoke import AsyncStatusPage
from airflow_provider_fgs.protocol.async_invoke_config import AsyncInvokeConfig
from airflow_provider_fgs.protocol.functions import FunctionConfig
from airflow_provider_fgs.protocol.http import HttpRequest, Response, platform_error
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.protocol.invoke import InvocationResult, build_invoke_request, parse_invoke_response
from airflow_provider_fgs.protocol.urn import FunctionUrn

T = TypeVar("T")


@dataclass(frozen=True)
class PreparedCall(Generic[T]):
    """
    A request ready to be authenticated and sent, with how to read its answer.

    :param request: the request, without authentication headers.
    :param parse: turns ``(status, headers, body)`` into the call's result or raises a typed error.
    :param what: the call, for log lines and messages.
    :param idempotent: whether re-sending it after it may have arrived is harmless.
    :param read_timeout: read timeout of this call, ``None`` for the connection's.
    :param invoked_function: the function's name when the call is a synchronous invocation (its outcome
        and latency go to the provider's metrics); ``None`` for any other call.
    """

    request: HttpRequest
    parse: Callable[[Response], T]
    what: str
    idempotent: bool
    read_timeout: float | None = None
    invoked_function: str | None = None


def as_invocation(
    function_urn: str | FunctionUrn | Invocation | None, payload: Any = None, **options: Any
) -> Invocation:
    """
    The :class:`Invocation` of a client call: the one given, or one made of the call's arguments.

    :raises TypeError: when an :class:`Invocation` comes with other arguments (they would be ignored).
    """
    if isinstance(function_urn, Invocation):
        defaults = Invocation()
        given = sorted(name for name, value in options.items() if value != getattr(defaults, name))
        if payload is not None or given:
            raise TypeError(
                f"Pass either an Invocation or the call's arguments, not both (also got "
                f"{', '.join(given + (['payload'] if payload is not None else []))})"
            )
        return function_urn
    urn = str(function_urn) if isinstance(function_urn, FunctionUrn) else function_urn
    if urn is not None and not urn.strip().startswith("urn:") and options.get("function_name") is None:
        options = {
            **options,
            "function_name": urn.strip(),
        }  # a bare name where the URN goes (kept for callers)
        urn = None
    return Invocation.from_dict({"function_urn": urn, "payload": payload, **options})


def invoke_call(
    settings: FunctionGraphSettings, urn: FunctionUrn, checked: Invocation
) -> PreparedCall[InvocationResult]:
    """The synchronous invocation of ``checked`` (an :meth:`Invocation.check`-ed invocation) on ``urn``."""
    request = build_invoke_request(
        settings.endpoint,
        urn,
        checked.payload,
        log_type=checked.log_type,
        request_version=checked.request_version,
        instance_memory=checked.instance_memory,
    )
    name = str(urn)

    def parse(response: Response) -> InvocationResult:
        return parse_invoke_response(
            *response, function=name, request_version=checked.request_version, deserialize=checked.deserialize
        )

    return PreparedCall(
        request,
        parse,
        what=f"invoke of {name}",
        idempotent=settings.retry.retry_sync_invoke,
        read_timeout=checked.timeout,
        invoked_function=urn.name,
    )


def async_invoke_call(settings: FunctionGraphSettings, urn: FunctionUrn, payload: Any) -> PreparedCall[str]:
    """The start of an asynchronous invocation; its answer is the request id."""
    name = str(urn)

    def parse(response: Response) -> str:
        return async_invoke.parse_async_invoke_response(*response, function=name)

    return PreparedCall(
        async_invoke.build_async_invoke_request(settings.endpoint, urn, payload),
        parse,
        what=f"async invoke of {name}",
        idempotent=settings.retry.retry_sync_invoke,
    )


def async_status_call(
    settings: FunctionGraphSettings,
    urn: FunctionUrn,
    request_id: str,
    *,
    query_begin_time: str | None,
    marker: int | None,
) -> PreparedCall[AsyncStatusPage]:
    """One page of the status query of an asynchronous invocation."""
    name = str(urn)

    def parse(response: Response) -> AsyncStatusPage:
        return async_invoke.parse_async_status_page(
            *response, request_id=request_id, function=name, marker=marker
        )

    request = async_invoke.build_async_status_request(
        settings.endpoint, urn, request_id, query_begin_time=query_begin_time, marker=marker
    )
    return PreparedCall(request, parse, what=f"async status query of {name}", idempotent=True)


def cancel_call(
    settings: FunctionGraphSettings, urn: FunctionUrn, request_id: str, mode: str
) -> PreparedCall[None]:
    """The cancel of an asynchronous invocation (harmless twice: re-sent after a broken connection too)."""
    name = str(urn)

    def parse(response: Response) -> None:
        async_invoke.parse_cancel_response(*response, request_id=request_id, function=name)

    request = async_invoke.build_cancel_request(settings.endpoint, urn, request_id, mode=mode)
    return PreparedCall(request, parse, what=f"cancel of async invocation {request_id}", idempotent=True)


def invoke_config_call(settings: FunctionGraphSettings, urn: FunctionUrn) -> PreparedCall[FunctionConfig]:
    """The config read that invocations use (timeout, LTS log group and stream)."""
    name = str(urn)

    def parse(response: Response) -> FunctionConfig:
        return function_config.parse_function_config(*response, function=name)

    request = functions.build_show_config_request(settings.endpoint, urn)
    return PreparedCall(request, parse, what=f"config query of {name}", idempotent=True)


def function_config_call(settings: FunctionGraphSettings, urn: FunctionUrn) -> PreparedCall[FunctionConfig]:
    """The whole configuration of the function (or of the version its URN names), as management reads it."""
    what = f"configuration read of {urn}"

    def parse(response: Response) -> FunctionConfig:
        return functions.parse_config(*response, what=what)

    return PreparedCall(
        functions.build_show_config_request(settings.endpoint, urn), parse, what=what, idempotent=True
    )


def async_invoke_config_call(
    settings: FunctionGraphSettings, urn: FunctionUrn
) -> PreparedCall[AsyncInvokeConfig]:
    """The read of the function's asynchronous invocation settings."""
    name = str(urn)

    def parse(response: Response) -> AsyncInvokeConfig:
        return async_invoke_config.parse_async_invoke_config(*response, function=name)

    request = async_invoke_config.build_async_invoke_config_request(settings.endpoint, urn)
    return PreparedCall(request, parse, what=f"async settings query of {name}", idempotent=True)


def log_stream_call(
    settings: FunctionGraphSettings, urn: FunctionUrn
) -> PreparedCall[tuple[str, str] | None]:
    """The query of the function's LTS log group and stream."""
    name = str(urn)

    def parse(response: Response) -> tuple[str, str] | None:
        return function_config.parse_log_stream(*response, function=name)

    request = function_config.build_log_stream_request(settings.endpoint, urn)
    return PreparedCall(request, parse, what=f"log stream query of {name}", idempotent=True)


def list_one_function_call(settings: FunctionGraphSettings, project_id: str) -> PreparedCall[int]:
    """A read that lists one function: the cheapest signed call, for the connection's Test button."""
    request = HttpRequest(
        method="GET",
        url=f"{settings.endpoint}/v2/{project_id}/fgs/functions?maxitems=1",
        headers={"Content-Type": "application/json", "X-Project-Id": project_id},
    )

    def parse(response: Response) -> int:
        status, headers, body = response
        if status >= 400:
            raise platform_error(status, headers, body, what="listing functions")
        return status

    return PreparedCall(request, parse, what="listing functions", idempotent=True)
