"""FunctionGraphClient: FunctionGraph's API for one connection's settings, sent over ``requests``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_fgs.client import calls, metrics
from airflow_provider_fgs.client.calls import PreparedCall, as_invocation
from airflow_provider_fgs.client.cooldown import CredentialCoolDowns
from airflow_provider_fgs.client.credential_chain import CredentialChain
from airflow_provider_fgs.client.credentials import mask_secret
from airflow_provider_fgs.client.flow import Blocking, CallSender, Exchange, Flow, Sleep, Step, drive
from airflow_provider_fgs.client.host_cache import HostStore, host_store
from airflow_provider_fgs.client.management import ManagementCalls
from airflow_provider_fgs.client.settings import FunctionGraphSettings
from airflow_provider_fgs.client.settings_cache import (
    ASYNC_INVOKE_CONFIGS,
    FUNCTION_CONFIGS,
    UNREAD,
    FunctionSettingsCache,
)
from airflow_provider_fgs.client.sourced_credentials import SourcedCredentials
from airflow_provider_fgs.client.tokens import TOKEN_CACHE, SharedTokens, TokenCache, TokenProvider
from airflow_provider_fgs.protocol.async_invoke import MAX_STATUS_PAGES, AsyncInvocationStatus
from airflow_provider_fgs.protocol.async_invoke_config import AsyncInvokeConfig
from airflow_provider_fgs.protocol.errors import AuthenticationError, FunctionGraphError, InvalidRequestError
from airflow_provider_fgs.protocol.function_config import sync_read_timeout
from airflow_provider_fgs.protocol.functions import FunctionConfig
from airflow_provider_fgs.protocol.http import HttpRequest, Response
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.protocol.invoke import InvocationResult
from airflow_provider_fgs.protocol.urn import FunctionUrn, check_function_arguments

if TYPE_CHECKING:
    import requests

T = TypeVar("T")
_log = logging.getLogger(__name__)
SettingsCall = Callable[[FunctionGraphSettings, FunctionUrn], PreparedCall[T]]


class FunctionGraphClient(ManagementCalls):
    """
    Calls Huawei Cloud FunctionGraph with one connection's credentials, over ``requests``.

    One ``requests.Session`` per client (HTTP keep-alive, and TCP keepalive probes so a silent wait for a
    long call survives idle-dropping NATs), TLS verification on unless the settings turn it off, a
    ``(connect, read)`` timeout on every request. IAM tokens are fetched lazily and shared by all clients
    of the same credentials in the process and, through the host's private cache directory
    (:mod:`~airflow_provider_fgs.client.host_cache`), by the other processes of the host; a token rejected
    with 401 (or 403 ``FSS.0403`` "invalid token") is refreshed once and the call retried once. AK/SK
    settings sign every request.

    Credentials that IAM or the API gateway rejected are not sent again from this host for the
    connection's ``credential_cooldown`` (:mod:`~airflow_provider_fgs.client.cooldown`): the call fails at
    once with :class:`CredentialCoolDownError`, so retries and fan-out cannot get them locked.

    Retries (bounded exponential backoff with jitter, ``Retry-After`` honoured) follow
    :mod:`~airflow_provider_fgs.client.retry`. A synchronous invocation is not idempotent: it is re-sent
    only when the request provably never reached the function (HTTP 429, no connection made), because a
    re-send after the request may have reached the function can run the function twice. The connection
    extra ``retry_sync_invoke`` also retries after read timeouts, broken connections and 5xx (503
    included), for functions that are safe to run twice.

    What a call does beyond one exchange is a flow (:mod:`~airflow_provider_fgs.client.flow`): this client
    drives it with ``requests``, :class:`~airflow_provider_fgs.client.async_client.AsyncFunctionGraphClient`
    on the event loop.

    :param settings: the connection's settings; a subclass may read them later instead
        (:class:`~airflow_provider_fgs.hooks.functiongraph.FunctionGraphHook` reads its connection).
    :param token_cache: the token cache; the process-wide one by default.
    """

    def __init__(
        self, settings: FunctionGraphSettings | None = None, *, token_cache: TokenCache | None = None
    ) -> None:
        if settings is not None:
            self.__dict__["settings"] = settings
        self._token_cache = token_cache or TOKEN_CACHE
        self._session: requests.Session | None = None
        self._session_lock = threading.Lock()

    @cached_property
    def settings(self) -> FunctionGraphSettings:
        """The connection's settings."""
        raise InvalidRequestError(f"{type(self).__name__} was given no settings")

    @cached_property
    def _host_store(self) -> HostStore | None:
        return host_store(self.settings.host_cache, self.settings.host_cache_dir)

    @cached_property
    def _tokens(self) -> TokenProvider:
        store = self._host_store
        return TokenProvider(
            self.settings,
            self._send_token_request,
            cache=self._token_cache,
            on_new_token=mask_secret,
            on_rejected=self._cool_downs.record,
            shared=SharedTokens(store) if store is not None else None,
        )

    @cached_property
    def _cool_downs(self) -> CredentialCoolDowns:
        return CredentialCoolDowns(self.settings, self._host_store)

    @cached_property
    def _sourced(self) -> SourcedCredentials | None:
        if not self.settings.uses_credential_sources:
            return None
        chain = CredentialChain(self.settings, self._fetch_for_credentials, mask_secret)
        return SourcedCredentials(
            self.settings,
            chain,
            store=self._host_store,
            on_new=mask_secret,
            on_rejected=self._cool_downs.record,
        )

    @cached_property
    def _sender(self) -> CallSender:
        return CallSender(self.settings, self._tokens, self._cool_downs, self._logger, self._sourced)

    @property
    def _logger(self) -> logging.Logger:
        """A stdlib logger: Airflow routes it to the task log, and pytest's caplog sees it."""
        return _log

    @property
    def region(self) -> str:
        """The connection's region."""
        return self.settings.region

    @property
    def project_id(self) -> str:
        """The connection's project id (learnt from the IAM token when only a project name is set)."""
        project_id = self.settings.project_id or self._tokens.project_id()
        if not project_id:
            raise InvalidRequestError(
                f"FunctionGraph connection {self.settings.conn_id!r}: extra 'project_id' is required"
            )
        return project_id

    def get_conn(self) -> requests.Session:
        """The client's ``requests.Session``, created on first use."""
        from airflow_provider_fgs.client.sync_transport import new_session

        with self._session_lock:
            if self._session is None:
                self._session = new_session(self.settings)
            return self._session

    def close(self) -> None:
        """Close the session and its pooled connections."""
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def __enter__(self) -> FunctionGraphClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- URNs --------------------------------------------------------------------------------------

    def resolve_urn(
        self,
        function_urn: str | FunctionUrn | None = None,
        *,
        function_name: str | None = None,
        package: str | None = None,
        qualifier: str | None = None,
        alias: str | None = None,
    ) -> FunctionUrn:
        """
        A validated URN from a full URN, or from parts completed with the connection's region and project.

        A ``function_urn`` that does not start with ``urn:`` is taken as a function name.

        :param function_urn: a full URN (``urn:fss:...``) or a :class:`FunctionUrn`.
        :param function_name: the function's name, when no URN is given.
        :param package: the function's package (default ``default``).
        :param qualifier: ``latest`` (default) or a version.
        :param alias: an alias name, instead of a qualifier.
        :raises InvalidRequestError: naming the bad or conflicting value, before any network call.
        """
        if isinstance(function_urn, FunctionUrn):
            check_function_arguments(str(function_urn), function_name, package, qualifier, alias)
            return function_urn  # already validated
        if function_urn is not None and not isinstance(function_urn, str):
            raise InvalidRequestError(f"Invalid function_urn {function_urn!r}: expected a string")
        urn_text = function_urn.strip() if function_urn is not None else None
        if urn_text is not None and not urn_text.startswith("urn:") and function_name is None:
            urn_text, function_name = None, urn_text  # a bare name where the URN goes (kept for callers)
        check_function_arguments(urn_text, function_name, package, qualifier, alias)
        if urn_text is not None:
            return FunctionUrn.parse(urn_text)
        if not function_name:
            raise InvalidRequestError(f"Invalid function_name {function_name!r}: the name is empty")
        return FunctionUrn.from_parts(
            region=self.region,
            project_id=self.project_id,
            name=function_name,
            package=package,
            qualifier=qualifier,
            alias=alias,
        )

    def _function(self, function: str | FunctionUrn) -> FunctionUrn:
        return self.resolve_urn(function)

    def _resolved(self, function_urn: str | FunctionUrn | None = None, **parts: Any) -> Flow[FunctionUrn]:
        """:meth:`resolve_urn` as a flow: a project learnt from the IAM token needs the token first."""
        if not self.settings.project_id and self._tokens.cached() is None:
            yield Blocking(self._tokens.token)
        return self.resolve_urn(function_urn, **parts)

    def _for_function(
        self, function_urn: str | FunctionUrn, flow: Callable[[FunctionUrn], Flow[T]]
    ) -> Flow[T]:
        """``flow`` of the function's resolved URN."""
        urn = yield from self._resolved(function_urn)
        return (yield from flow(urn))

    # -- synchronous invocation --------------------------------------------------------------------

    def invoke(
        self,
        function_urn: str | FunctionUrn | Invocation | None = None,
        payload: Any = None,
        *,
        function_name: str | None = None,
        package: str | None = None,
        qualifier: str | None = None,
        alias: str | None = None,
        log_type: str | None = "tail",
        request_version: str = "v1",
        instance_memory: int | str | None = None,
        timeout: float | None = None,
        deserialize: bool = True,
    ) -> InvocationResult:
        """
        Invoke a function synchronously.

        Name the function as the operator does: by ``function_urn``, or by ``function_name`` with
        optional ``package`` and ``qualifier`` or ``alias`` (completed with the connection's region and
        project); or pass one :class:`~airflow_provider_fgs.protocol.invocation.Invocation` holding all
        of it. Call :meth:`InvocationResult.raise_for_function_error` on the result to raise the
        operator's :class:`FunctionError` when the function failed.

        :param function_urn: a full URN, a :class:`FunctionUrn`, (as before) a function name in the
            connection's project, or an :class:`Invocation` (then give no other argument).
        :param function_name: the function's name, instead of ``function_urn``.
        :param package: the function's package (default ``default``); only with ``function_name``.
        :param qualifier: ``latest`` (default) or a version; only with ``function_name``.
        :param alias: an alias name, instead of ``qualifier``; only with ``function_name``.
        :param payload: the event: a JSON-serializable value, or a JSON ``str``/``bytes``.
        :param log_type: ``"tail"`` to get the end of the function's log, ``None``/``"none"`` for none.
        :param request_version: ``"v1"`` (JSON envelope) or ``"v0"`` (raw result).
        :param instance_memory: instance memory in MB for this call.
        :param timeout: read timeout in seconds for this call. By default the connection's ``read_timeout``
            when it sets one, else the function's own timeout (read once from its config, see
            :meth:`function_timeout`) plus a margin, at most the gateway's 90 s cut plus that margin.
        :param deserialize: JSON-decode the result when it is JSON.
        :return: the result; ``is_function_error`` tells whether the function failed.
        :raises InvalidRequestError: bad input (also a missing or conflicting function name), before any
            network call.
        :raises FunctionGraphApiError: the platform refused the call (typed subclasses).
        """
        invocation = as_invocation(
            function_urn,
            payload,
            function_name=function_name,
            package=package,
            qualifier=qualifier,
            alias=alias,
            log_type=log_type,
            request_version=request_version,
            instance_memory=instance_memory,
            timeout=timeout,
            deserialize=deserialize,
        )
        return self._run(self._invoke(invocation))

    def _invoke(self, invocation: Invocation) -> Flow[InvocationResult]:
        _, call = yield from self._prepared_invoke(invocation)
        return (yield from self._sender.send(call))

    def _prepared_invoke(
        self, invocation: Invocation
    ) -> Flow[tuple[FunctionUrn, PreparedCall[InvocationResult]]]:
        """
        Everything of an invocation that comes before sending: check it, resolve its URN, build its
        request, choose the read timeout (from the function's config unless set).

        :raises InvalidRequestError: bad input, before any network call.
        """
        checked = invocation.check()
        urn = yield from self._resolved(**checked.target())
        call = calls.invoke_call(self.settings, urn, checked)
        if checked.timeout is None and not self.settings.read_timeout_set:  # the config may be read
            config = yield from self._invoke_config(urn)
            call = replace(call, read_timeout=self._read_timeout_for(urn, config))
        return urn, call

    def _read_timeout_for(self, urn: FunctionUrn, config: FunctionConfig | None) -> float | None:
        """The read timeout following the function's own timeout, ``None`` when it is unknown."""
        if config is None or config.timeout is None:
            return None
        read_timeout = sync_read_timeout(config.timeout)
        self._logger.debug(
            "Waiting up to %g s for the answer of %s (its timeout is %g s)", read_timeout, urn, config.timeout
        )
        return read_timeout

    # -- function settings, cached per process ---------------------------------------------------------

    def function_config(self, function_urn: str | FunctionUrn) -> FunctionConfig | None:
        """
        The function's config (ShowFunctionConfig) as invocations use it (timeout, LTS log group and
        stream): cached, and ``None`` when it cannot be read. :meth:`get_function_config` reads it
        afresh and raises on errors.

        Read once per process and function, and trusted for
        :data:`~airflow_provider_fgs.client.settings_cache.FUNCTION_SETTINGS_TTL_S`. A refused or failed
        read is logged and remembered as ``None`` too (a sync call then waits the connection's read
        timeout); rejected credentials are raised, so a bad key is not tried twice per call.
        """
        return self._run(self._for_function(function_urn, self._invoke_config))

    def function_timeout(self, function_urn: str | FunctionUrn) -> float | None:
        """The function's configured timeout in seconds, from :meth:`function_config`."""
        config = self.function_config(function_urn)
        return None if config is None else config.timeout

    def function_log_stream(self, function_urn: str | FunctionUrn) -> tuple[str, str] | None:
        """
        ``(log_group_id, log_stream_id)`` of the function's logs in LTS, ``None`` when unknown.

        From the function's config when it names them, else from ``GET .../{urn}/lts-log-detail``.
        """
        urn = self.resolve_urn(function_urn)
        config = self.function_config(urn)
        if config is not None and config.log_group_id and config.log_stream_id:
            return config.log_group_id, config.log_stream_id
        try:
            return self._call(calls.log_stream_call(self.settings, urn))
        except FunctionGraphError as err:
            self._logger.warning("Could not read the LTS log stream of %s: %s", urn, err)
            return None

    def async_invoke_config(self, function_urn: str | FunctionUrn) -> AsyncInvokeConfig | None:
        """
        The function's asynchronous invocation settings (ShowFunctionAsyncInvokeConfig), above all
        whether async status persistence is on: cached like :meth:`function_config`.

        A refused or failed read (after the retries of a safe read) is logged as a warning naming the
        reason and remembered as ``None``; rejected credentials are raised.
        """
        return self._run(self._for_function(function_urn, self._async_settings))

    def _invoke_config(self, urn: FunctionUrn) -> Flow[FunctionConfig | None]:
        return self._settings_of(urn, FUNCTION_CONFIGS, calls.invoke_config_call, self._config_unreadable)

    def _async_settings(self, urn: FunctionUrn) -> Flow[AsyncInvokeConfig | None]:
        return self._settings_of(
            urn, ASYNC_INVOKE_CONFIGS, calls.async_invoke_config_call, self._async_settings_unreadable
        )

    def _settings_of(
        self,
        urn: FunctionUrn,
        cache: FunctionSettingsCache[T],
        call: SettingsCall[T],
        unreadable: Callable[[FunctionUrn, FunctionGraphError], None],
    ) -> Flow[T | None]:
        """Settings of ``urn`` from ``cache``, else read; a failed read is reported and kept as ``None``."""
        known = cache.known(self.settings.endpoint, urn)
        if known is not UNREAD:
            return known
        try:
            value = yield from self._sender.send(call(self.settings, urn))
        except AuthenticationError:
            raise
        except FunctionGraphError as err:
            unreadable(urn, err)
            value = None
        return cache.remember(self.settings.endpoint, urn, value)

    def _config_unreadable(self, urn: FunctionUrn, err: FunctionGraphError) -> None:
        self._logger.warning(
            "Could not read the config of %s (%s); sync calls wait the connection's read timeout of %g s",
            urn,
            err,
            self.settings.read_timeout,
        )

    def _async_settings_unreadable(self, urn: FunctionUrn, err: FunctionGraphError) -> None:
        self._logger.warning(
            "Could not read the async settings of %s (%s): whether its async status persistence is on "
            "is unknown, so it is not checked",
            urn,
            err,
        )

    # -- asynchronous invocations ------------------------------------------------------------------

    def invoke_async(self, function_urn: str | FunctionUrn, payload: Any = None) -> str:
        """
        Start an asynchronous invocation.

        Not idempotent either (each accepted request is a run): retried like :meth:`invoke`.

        :return: the request id of the invocation.
        """
        urn = self.resolve_urn(function_urn)
        try:
            request_id = self._call(calls.async_invoke_call(self.settings, urn, payload))
        except Exception as err:
            metrics.async_invocation_not_started(urn.name, err)
            raise
        metrics.async_invocation_started(urn.name)
        return request_id

    def get_async_invocation(
        self, function_urn: str | FunctionUrn, request_id: str, *, query_begin_time: str | None = None
    ) -> AsyncInvocationStatus | None:
        """
        The status of an asynchronous invocation, ``None`` when the platform has no record of it.

        No record does not prove the invocation is pending: records exist only when async status
        persistence is enabled on the function, and a query finds only records from
        ``query_begin_time`` on (the last hour when not given). Pages are followed with
        ``marker``/``limit`` until the record is found.

        :param query_begin_time: UTC ``YYYY-MM-DDTHH:mm:ss`` (or ISO 8601) start of the search window,
            e.g. from :func:`~airflow_provider_fgs.protocol.async_invoke.query_begin_time_for`.
        """
        return self._run(self._async_status(function_urn, request_id, query_begin_time))

    def _async_status(
        self, function_urn: str | FunctionUrn, request_id: str, query_begin_time: str | None
    ) -> Flow[AsyncInvocationStatus | None]:
        urn = yield from self._resolved(function_urn)
        marker: int | None = None
        for _ in range(MAX_STATUS_PAGES):
            call = calls.async_status_call(
                self.settings, urn, request_id, query_begin_time=query_begin_time, marker=marker
            )
            page = yield from self._sender.send(call)
            if page.status is not None or page.next_marker is None:
                return page.status
            marker = page.next_marker
        return None

    def cancel_async_invocation(
        self, function_urn: str | FunctionUrn, request_id: str, *, mode: str = "force"
    ) -> None:
        """
        Stop an asynchronous invocation that has not ended (its status becomes DISCARD).

        :param function_urn: the function the invocation was started on.
        :param request_id: the request id returned by :meth:`invoke_async`.
        :param mode: ``force`` (end the runtime; the only mode Huawei documents as supported) or
            ``recursive`` (stop the sub-functions it is calling).
        :raises FunctionGraphApiError: the platform refused, e.g. because the invocation already ended.
        """
        self._run(self._cancel(function_urn, request_id, mode))

    def _cancel(self, function_urn: str | FunctionUrn, request_id: str, mode: str) -> Flow[None]:
        urn = yield from self._resolved(function_urn)
        yield from self._sender.send(calls.cancel_call(self.settings, urn, request_id, mode))

    # -- sending, over requests --------------------------------------------------------------------

    def _call(self, call: PreparedCall[T]) -> T:
        """Authenticate, send and parse ``call`` (retries, the one-time refresh, metrics)."""
        return self._run(self._sender.send(call))

    def _run(self, flow: Flow[T]) -> T:
        """Drive ``flow`` in this thread."""
        return drive(flow, self._perform)

    def _perform(self, step: Step) -> Any:
        if isinstance(step, Exchange):
            if step.first_use is None or step.settle is None:
                return self._exchange(step.request, step.read_timeout, step.connect_timeout)
            with step.first_use.first_use():
                response = self._exchange(step.request, step.read_timeout)
                step.settle(response)
                return response
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
        elif isinstance(step, Blocking):
            return step.work()
        return None

    def _exchange(
        self, request: HttpRequest, read_timeout: float | None, connect_timeout: float | None = None
    ) -> Response:
        from airflow_provider_fgs.client.sync_transport import exchange

        return exchange(self.get_conn(), self.settings, request, read_timeout, connect_timeout)

    def _fetch_for_credentials(self, request: HttpRequest, what: str, probe: bool) -> Response:
        """Send a request of the credential chain (see :meth:`CallSender.fetch`)."""
        return self._run(self._sender.fetch(request, what, probe))

    def _send_token_request(self, request: HttpRequest) -> Response:
        """Send an IAM token request, with the retries of an idempotent call (the token provider's)."""
        return self._run(self._sender.send_token_request(request))
