"""FunctionGraphHook: authenticated, retried calls to Huawei Cloud FunctionGraph over ``requests``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from airflow.sdk import BaseHook

from airflow_provider_fgs import __version__
from airflow_provider_fgs.client import metrics
from airflow_provider_fgs.client.cooldown import CredentialCoolDowns
from airflow_provider_fgs.client.host_cache import HostStore, host_store
from airflow_provider_fgs.client.management import FunctionManagementMixin
from airflow_provider_fgs.client.retry import (
    TransportError,
    delay_after_first_attempt,
    mark_exhausted,
    note_not_resent,
    retry_arguments,
)
from airflow_provider_fgs.client.settings import KNOWN_EXTRAS, FunctionGraphSettings, parse_connection
from airflow_provider_fgs.client.settings_cache import UNREAD, FunctionSettingsCache
from airflow_provider_fgs.client.tokens import (
    TOKEN_CACHE,
    Response,
    SharedTokens,
    TokenCache,
    TokenProvider,
    authenticate,
    uses_fetched_tokens,
)
from airflow_provider_fgs.hooks.connection_form import legacy_field_behaviour, legacy_form_widgets
from airflow_provider_fgs.protocol.errors import (
    AuthenticationError,
    FunctionGraphError,
    InvalidRequestError,
)
from airflow_provider_fgs.protocol.http import (
    RETRYABLE_STATUS,
    HttpRequest,
    is_token_rejected,
    platform_error,
)
from airflow_provider_fgs.protocol.invocation import Invocation
from airflow_provider_fgs.protocol.invoke import InvocationResult, build_invoke_request, parse_invoke_response
from airflow_provider_fgs.protocol.urn import FunctionUrn, check_function_arguments

if TYPE_CHECKING:
    import requests

    from airflow_provider_fgs.protocol.async_invoke import AsyncInvocationStatus, AsyncStatusPage
    from airflow_provider_fgs.protocol.async_invoke_config import AsyncInvokeConfig
    from airflow_provider_fgs.protocol.functions import FunctionConfig

T = TypeVar("T")
_log = logging.getLogger(__name__)
USER_AGENT = f"airflow-provider-fgs/{__version__}"
FUNCTION_CONFIG_TTL_S = 600.0
"""How long a function's config (its timeout, its log stream) is trusted by the process that read it."""
_function_configs: FunctionSettingsCache[FunctionConfig] = FunctionSettingsCache(FUNCTION_CONFIG_TTL_S)
_async_invoke_configs: FunctionSettingsCache[AsyncInvokeConfig] = FunctionSettingsCache(FUNCTION_CONFIG_TTL_S)


def _mask_secret(value: str) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(value)


@dataclass(frozen=True)
class PreparedCall(Generic[T]):
    """
    A request ready to be authenticated and sent, with how to read its answer.

    Built once and sent by either transport (the sync hook, or the async hook of the triggers).

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
    The :class:`Invocation` of a hook call: the one given, or one made of the call's arguments.

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


def _raise_if_retryable(response: Response, what: str) -> Response:
    status, headers, body = response
    if status in RETRYABLE_STATUS:
        raise platform_error(status, headers, body, what=what)
    return response


class FunctionGraphHook(FunctionManagementMixin, BaseHook):
    """
    Calls Huawei Cloud FunctionGraph with the credentials of a ``functiongraph`` connection.

    One ``requests.Session`` per hook (HTTP keep-alive, and TCP keepalive probes so a silent wait for a
    long call survives idle-dropping NATs), TLS verification on unless the connection turns it off, a
    ``(connect, read)`` timeout on every request. IAM tokens are fetched lazily and shared by
    all hooks of the same credentials in the process and, through the host's private cache directory
    (:mod:`airflow_provider_fgs.client.host_cache`), by the other processes of the host; a token rejected
    with 401 (or 403 ``FSS.0403`` "invalid token") is refreshed once and the call retried once. AK/SK
    connections sign every request.

    Credentials that IAM or the API gateway rejected are not sent again from this host for the
    connection's ``credential_cooldown`` (:mod:`airflow_provider_fgs.client.cooldown`): the call fails at
    once with :class:`CredentialCoolDownError`, so retries and fan-out cannot get them locked.

    Retries (bounded exponential backoff with jitter, ``Retry-After`` honoured) follow
    :mod:`airflow_provider_fgs.client.retry`. A synchronous invocation is not idempotent: it is re-sent only
    when the request provably never reached the function (HTTP 429, no connection made), because a
    re-send after the request may have reached the function can run the function twice. Set the
    connection extra ``retry_sync_invoke`` to true to also retry after read timeouts, broken
    connections and 5xx (503 included), for functions that are safe to run twice.

    The hook does not raise when the user's function fails: :meth:`invoke` returns an
    :class:`InvocationResult` with ``is_function_error`` set, and the caller decides.

    :param functiongraph_conn_id: the Airflow connection id.
    :param token_cache: the token cache; the process-wide one by default.
    """

    conn_name_attr = "functiongraph_conn_id"
    default_conn_name = "functiongraph_default"
    conn_type = "functiongraph"
    hook_name = "Huawei Cloud FunctionGraph"

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form, for Airflow 3.1 (3.2+ reads ``conn-fields``)."""
        return legacy_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Standard fields of the connection form, for Airflow 3.1 (3.2+ reads ``ui-field-behaviour``)."""
        return legacy_field_behaviour()

    def __init__(
        self,
        functiongraph_conn_id: str = default_conn_name,
        *,
        token_cache: TokenCache | None = None,
    ) -> None:
        super().__init__()
        self.functiongraph_conn_id = functiongraph_conn_id
        self._token_cache = token_cache or TOKEN_CACHE
        self._session: requests.Session | None = None
        self._session_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(functiongraph_conn_id={self.functiongraph_conn_id!r})"

    # -- connection and settings ------------------------------------------------------------------

    @cached_property
    def settings(self) -> FunctionGraphSettings:
        """The parsed connection (read once per hook); its secrets are registered with the masker."""
        conn = self.get_connection(self.functiongraph_conn_id)
        settings = parse_connection(conn)
        for secret in settings.secrets:
            _mask_secret(secret)
        unknown = sorted(set(conn.extra_dejson or {}) - KNOWN_EXTRAS)
        if unknown:
            self._logger.warning("Connection %r has unknown extra fields: %s", settings.conn_id, unknown)
        return settings

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
            on_new_token=_mask_secret,
            on_rejected=self._cool_downs.record,
            shared=SharedTokens(store) if store is not None else None,
        )

    @cached_property
    def _cool_downs(self) -> CredentialCoolDowns:
        return CredentialCoolDowns(self.settings, self._host_store)

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
        """The hook's ``requests.Session``, created on first use."""
        with self._session_lock:
            if self._session is None:
                import requests

                from airflow_provider_fgs.client.keepalive_adapter import KeepaliveAdapter

                session = requests.Session()
                session.mount("https://", KeepaliveAdapter())
                session.mount("http://", KeepaliveAdapter())
                session.verify = self.settings.verify
                session.proxies.update(self.settings.proxies)
                session.headers["User-Agent"] = USER_AGENT
                self._session = session
            return self._session

    def close(self) -> None:
        """Close the session and its pooled connections."""
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def __enter__(self) -> FunctionGraphHook:
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

    # -- API ---------------------------------------------------------------------------------------

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
        urn, call = self._prepare_invoke(invocation)
        if invocation.timeout is None and not self.settings.read_timeout_set:  # the config may be read
            known = _function_configs.known(self.settings.endpoint, urn)
            call = replace(call, read_timeout=self._read_timeout_for(urn, known))
        return self._call(call)

    def _prepare_invoke(self, invocation: Invocation) -> tuple[FunctionUrn, PreparedCall[InvocationResult]]:
        """
        The function's URN and the invoke request of ``invocation`` with how to read its answer (shared
        with the async hook). Everything is checked before the request is built.
        """
        checked = invocation.check()
        urn = self.resolve_urn(**checked.target())
        request = build_invoke_request(
            self.settings.endpoint,
            urn,
            checked.payload,
            log_type=checked.log_type,
            request_version=checked.request_version,
            instance_memory=checked.instance_memory,
        )
        name = str(urn)

        def parse(response: Response) -> InvocationResult:
            status, headers, body = response
            return parse_invoke_response(
                status,
                headers,
                body,
                function=name,
                request_version=checked.request_version,
                deserialize=checked.deserialize,
            )

        call = PreparedCall(
            request,
            parse,
            what=f"invoke of {name}",
            idempotent=self.settings.retry.retry_sync_invoke,
            read_timeout=checked.timeout,
            invoked_function=urn.name,
        )
        return urn, call

    def function_config(self, function_urn: str | FunctionUrn) -> FunctionConfig | None:
        """
        The function's config (ShowFunctionConfig) as invocations use it (timeout, LTS log group and
        stream): cached, and ``None`` when it cannot be read. :meth:`get_function_config` reads it
        afresh and raises on errors.

        Read once per process and function, and trusted for :data:`FUNCTION_CONFIG_TTL_S`. A refused or
        failed read is logged and remembered as ``None`` too (a sync call then waits the connection's
        read timeout); rejected credentials are raised, so a bad key is not tried twice per call.
        """
        urn = self.resolve_urn(function_urn)
        return self._read_settings(
            _function_configs, urn, self._prepare_invoke_config, self._config_unreadable
        )

    def function_timeout(self, function_urn: str | FunctionUrn) -> float | None:
        """The function's configured timeout in seconds, from :meth:`function_config`."""
        config = self.function_config(function_urn)
        return None if config is None else config.timeout

    def function_log_stream(self, function_urn: str | FunctionUrn) -> tuple[str, str] | None:
        """
        ``(log_group_id, log_stream_id)`` of the function's logs in LTS, ``None`` when unknown.

        From the function's config when it names them, else from ``GET .../{urn}/lts-log-detail``.
        """
        from airflow_provider_fgs.protocol.function_config import build_log_stream_request, parse_log_stream

        urn = self.resolve_urn(function_urn)
        config = self.function_config(urn)
        if config is not None and config.log_group_id and config.log_stream_id:
            return config.log_group_id, config.log_stream_id
        name = str(urn)

        def parse(response: Response) -> tuple[str, str] | None:
            return parse_log_stream(*response, function=name)

        request = build_log_stream_request(self.settings.endpoint, urn)
        try:
            return self._call(
                PreparedCall(request, parse, what=f"log stream query of {name}", idempotent=True)
            )
        except FunctionGraphError as err:
            self._logger.warning("Could not read the LTS log stream of %s: %s", name, err)
            return None

    def _prepare_invoke_config(self, urn: FunctionUrn) -> PreparedCall[FunctionConfig]:
        """The config query of :meth:`function_config` (shared with the async hook)."""
        from airflow_provider_fgs.protocol.function_config import parse_function_config
        from airflow_provider_fgs.protocol.functions import build_show_config_request

        name = str(urn)

        def parse(response: Response) -> FunctionConfig:
            return parse_function_config(*response, function=name)

        request = build_show_config_request(self.settings.endpoint, urn)
        return PreparedCall(request, parse, what=f"config query of {name}", idempotent=True)

    def _config_unreadable(self, urn: FunctionUrn, err: FunctionGraphError) -> None:
        self._logger.warning(
            "Could not read the config of %s (%s); sync calls wait the connection's read timeout of %g s",
            urn,
            err,
            self.settings.read_timeout,
        )

    def async_invoke_config(self, function_urn: str | FunctionUrn) -> AsyncInvokeConfig | None:
        """
        The function's asynchronous invocation settings (ShowFunctionAsyncInvokeConfig), above all
        whether async status persistence is on: cached like :meth:`function_config`.

        Read once per process and function (version), and trusted for :data:`FUNCTION_CONFIG_TTL_S`. A
        refused or failed read (after the retries of a safe read) is logged as a warning naming the
        reason and remembered as ``None``; rejected credentials are raised.
        """
        urn = self.resolve_urn(function_urn)
        return self._read_settings(
            _async_invoke_configs,
            urn,
            self._prepare_async_invoke_config,
            self._async_settings_unreadable,
        )

    def _read_settings(
        self,
        cache: FunctionSettingsCache[T],
        urn: FunctionUrn,
        prepare: Callable[[FunctionUrn], PreparedCall[T]],
        unreadable: Callable[[FunctionUrn, FunctionGraphError], None],
    ) -> T | None:
        """Settings of ``urn`` from ``cache``, else read; a failed read is reported and kept as ``None``."""
        known = cache.known(self.settings.endpoint, urn)
        if known is not UNREAD:
            return cast("T | None", known)
        try:
            value = self._call(prepare(urn))
        except AuthenticationError:
            raise
        except FunctionGraphError as err:
            unreadable(urn, err)
            value = None
        return cache.remember(self.settings.endpoint, urn, value)

    def _prepare_async_invoke_config(self, urn: FunctionUrn) -> PreparedCall[AsyncInvokeConfig]:
        """The settings query of :meth:`async_invoke_config` (shared with the async hook)."""
        from airflow_provider_fgs.protocol.async_invoke_config import (
            build_async_invoke_config_request,
            parse_async_invoke_config,
        )

        name = str(urn)

        def parse(response: Response) -> AsyncInvokeConfig:
            return parse_async_invoke_config(*response, function=name)

        request = build_async_invoke_config_request(self.settings.endpoint, urn)
        return PreparedCall(request, parse, what=f"async settings query of {name}", idempotent=True)

    def _async_settings_unreadable(self, urn: FunctionUrn, err: FunctionGraphError) -> None:
        self._logger.warning(
            "Could not read the async settings of %s (%s): whether its async status persistence is on "
            "is unknown, so it is not checked",
            urn,
            err,
        )

    def _read_timeout_for(self, urn: FunctionUrn, known: Any) -> float | None:
        """The read timeout following the function's timeout; its config is read if ``known`` is unknown."""
        from airflow_provider_fgs.protocol.function_config import sync_read_timeout

        config = self.function_config(urn) if known is UNREAD else known
        if config is None or config.timeout is None:
            return None
        read_timeout = sync_read_timeout(config.timeout)
        self._logger.debug(
            "Waiting up to %g s for the answer of %s (its timeout is %g s)",
            read_timeout,
            urn,
            config.timeout,
        )
        return read_timeout

    def invoke_async(self, function_urn: str | FunctionUrn, payload: Any = None) -> str:
        """
        Start an asynchronous invocation.

        Not idempotent either (each accepted request is a run): retried like :meth:`invoke`.

        :return: the request id of the invocation.
        """
        from airflow_provider_fgs.protocol.async_invoke import (
            build_async_invoke_request,
            parse_async_invoke_response,
        )

        urn = self.resolve_urn(function_urn)
        request = build_async_invoke_request(self.settings.endpoint, urn, payload)
        name = str(urn)

        def parse(response: Response) -> str:
            return parse_async_invoke_response(*response, function=name)

        try:
            request_id = self._call(
                PreparedCall(
                    request,
                    parse,
                    what=f"async invoke of {name}",
                    idempotent=self.settings.retry.retry_sync_invoke,
                )
            )
        except Exception as err:
            metrics.async_invocation_not_started(urn.name, err)
            raise
        metrics.async_invocation_started(urn.name)
        return request_id

    def get_async_invocation(
        self,
        function_urn: str | FunctionUrn,
        request_id: str,
        *,
        query_begin_time: str | None = None,
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
        from airflow_provider_fgs.protocol.async_invoke import MAX_STATUS_PAGES

        marker: int | None = None
        for _ in range(MAX_STATUS_PAGES):
            page = self._call(
                self._prepare_async_status(
                    function_urn, request_id, query_begin_time=query_begin_time, marker=marker
                )
            )
            if page.status is not None or page.next_marker is None:
                return page.status
            marker = page.next_marker
        return None

    def _prepare_async_status(
        self,
        function_urn: str | FunctionUrn,
        request_id: str,
        *,
        query_begin_time: str | None = None,
        marker: int | None = None,
    ) -> PreparedCall[AsyncStatusPage]:
        """One page of the status query of :meth:`get_async_invocation` (shared with the async hook)."""
        from airflow_provider_fgs.protocol.async_invoke import (
            build_async_status_request,
            parse_async_status_page,
        )

        urn = self.resolve_urn(function_urn)
        request = build_async_status_request(
            self.settings.endpoint, urn, request_id, query_begin_time=query_begin_time, marker=marker
        )
        name = str(urn)

        def parse(response: Response) -> AsyncStatusPage:
            return parse_async_status_page(*response, request_id=request_id, function=name, marker=marker)

        return PreparedCall(request, parse, what=f"async status query of {name}", idempotent=True)

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
        self._call(self._prepare_cancel(function_urn, request_id, mode))

    def _prepare_cancel(
        self, function_urn: str | FunctionUrn, request_id: str, mode: str
    ) -> PreparedCall[None]:
        """The cancel request of :meth:`cancel_async_invocation` (shared with the async hook)."""
        from airflow_provider_fgs.protocol.async_invoke import build_cancel_request, parse_cancel_response

        urn = self.resolve_urn(function_urn)
        request = build_cancel_request(self.settings.endpoint, urn, request_id, mode=mode)
        name = str(urn)

        def parse(response: Response) -> None:
            parse_cancel_response(*response, request_id=request_id, function=name)

        # Cancelling twice is harmless: safe to re-send after a broken connection.
        return PreparedCall(request, parse, what=f"cancel of async invocation {request_id}", idempotent=True)

    def test_connection(self) -> tuple[bool, str]:
        """
        Check the connection for the UI's Test button.

        Password mode fetches an IAM token; AK/SK and pre-issued token modes make a signed (or
        token-authenticated) read call listing one function. Never raises.
        """
        try:
            settings = self.settings
            if uses_fetched_tokens(settings):
                self._tokens.token()
                return True, (
                    f"IAM issued a token for {settings.principal} at {settings.iam_endpoint}; "
                    f"project {self.project_id}"
                )
            project_id = self.project_id
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

            self._call(PreparedCall(request, parse, what="listing functions", idempotent=True))
            return True, f"FunctionGraph at {settings.endpoint} accepted {settings.principal}"
        except FunctionGraphError as err:
            return False, str(err)
        except Exception as err:  # the Test button must show a message, not a traceback
            return False, f"{type(err).__name__}: {err}"

    # -- transport ---------------------------------------------------------------------------------

    def _send_token_request(self, request: HttpRequest) -> Response:
        """Send an IAM token request (idempotent): retried on throttling, 5xx and transport errors."""
        what = f"IAM token request for {self.settings.principal}"
        self._cool_downs.check()
        return self._retrying(
            lambda: _raise_if_retryable(self._exchange(request, None), what), what=what, idempotent=True
        )

    def _call(self, call: PreparedCall[T]) -> T:
        """
        Authenticate, send and parse ``call`` with retries and the one-time refresh on 401; the outcome
        of an invocation goes to the metrics.
        """
        function = call.invoked_function
        if function is None:
            return self._send_with_retries(call)
        started = time.monotonic()
        try:
            result = self._send_with_retries(call)
        except Exception as err:
            metrics.invocation_failed(function, time.monotonic() - started, err)
            raise
        if isinstance(result, InvocationResult):
            metrics.invocation_answered(function, time.monotonic() - started, result)
        return result

    def _send_with_retries(self, call: PreparedCall[T]) -> T:
        """Authenticate, send and parse ``call`` with retries and the one-time refresh on 401."""

        def attempt() -> T:
            settings = self.settings
            self._cool_downs.check()
            if settings.auth_type == "aksk":
                with self._cool_downs.first_use():
                    response = self._exchange(authenticate(call.request, settings), call.read_timeout)
                    self._raise_if_signature_rejected(response, call.what)
                return call.parse(response)
            token = self._tokens.token()
            response = self._exchange(authenticate(call.request, settings, token=token), call.read_timeout)
            if is_token_rejected(response[0], response[2]):
                self._drop_rejected_token(response, token, call.what)
                token = self._tokens.token()
                response = self._exchange(
                    authenticate(call.request, settings, token=token), call.read_timeout
                )
                self._raise_if_rejected_again(response, call.what)
            return call.parse(response)

        return self._retrying(
            attempt, what=call.what, idempotent=call.idempotent, function=call.invoked_function
        )

    def _drop_rejected_token(self, response: Response, token: str, what: str) -> None:
        """After a token rejection (401, 403 invalid token): forget ``token`` so the next fetch is fresh."""
        if not uses_fetched_tokens(self.settings):
            raise self._auth_error(response, what, "the pre-issued token was rejected")
        self._logger.info("FunctionGraph rejected the IAM token for %s; fetching a new one", what)
        self._tokens.invalidate(token)

    def _raise_if_signature_rejected(self, response: Response, what: str) -> None:
        """After a 401 to a signed request: start the credential's cool-down and raise."""
        if response[0] == 401:
            error = self._auth_error(response, what, "the AK/SK signature was rejected")
            self._cool_downs.record(error)
            raise error
        self._cool_downs.accepted()

    def _raise_if_rejected_again(self, response: Response, what: str) -> None:
        if is_token_rejected(response[0], response[2]):
            raise self._auth_error(response, what, "a freshly fetched token was rejected too")

    def _auth_error(self, response: Response, what: str, why: str) -> AuthenticationError:
        status, headers, body = response
        error = platform_error(status, headers, body, what=what)
        return AuthenticationError(
            f"{error} ({why}; credentials of {self.settings.principal})",
            http_status=status,
            error_code=error.error_code,
            error_msg=error.error_msg,
            request_id=error.request_id,
        )

    def _retrying(
        self, fn: Callable[[], T], *, what: str, idempotent: bool, function: str | None = None
    ) -> T:
        """
        ``fn()`` under the retry policy: a first plain attempt, then tenacity after a retryable failure.

        :param function: the function's name when the call is an invocation (for the metrics' tags).
        """
        settings = self.settings.retry
        try:
            try:
                return fn()
            except Exception as exc:
                delay = delay_after_first_attempt(
                    exc, settings, idempotent=idempotent, what=what, logger=self._logger, function=function
                )
                if delay is None:
                    raise
            time.sleep(delay)
            from tenacity import Retrying

            retrying = Retrying(
                **retry_arguments(
                    settings,
                    idempotent=idempotent,
                    what=what,
                    logger=self._logger,
                    attempts_done=1,
                    function=function,
                )
            )
            return retrying(fn)
        except FunctionGraphError as err:
            mark_exhausted(err)
            note_not_resent(err, idempotent=idempotent)
            raise

    @property
    def _logger(self) -> logging.Logger:
        """A stdlib logger: Airflow routes it to the task log, and pytest's caplog sees it."""
        return _log

    def _exchange(self, request: HttpRequest, read_timeout: float | None) -> Response:
        """One HTTP exchange; transport failures become :class:`TransportError`."""
        import requests

        settings = self.settings
        timeout = (settings.connect_timeout, read_timeout or settings.read_timeout)
        try:
            response = self.get_conn().request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body or None,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.RequestException as err:
            raise _transport_error(err, request) from None
        return response.status_code, response.headers, response.content


def _transport_error(err: Exception, request: HttpRequest) -> TransportError:
    import requests

    target = f"{request.method} {request.url.split('?', 1)[0]}"
    if isinstance(err, requests.exceptions.SSLError):
        return TransportError(f"TLS failure talking to {target}: {err}", request_sent=False, retryable=False)
    if isinstance(err, requests.exceptions.ConnectTimeout) or _never_connected(err):
        return TransportError(f"Could not connect for {target}: {err}", request_sent=False)
    if isinstance(err, requests.exceptions.ReadTimeout):
        return TransportError(
            f"No answer within the read timeout for {target} (the request was sent): {err}", request_sent=True
        )
    # A body cut short after the headers (ChunkedEncodingError) is a broken connection too, as in httpx.
    if isinstance(err, requests.exceptions.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return TransportError(
            f"Connection broke during {target} (the request may have reached the server): {err}",
            request_sent=None,
        )
    return TransportError(f"HTTP failure during {target}: {err}", request_sent=None, retryable=False)


def _never_connected(err: BaseException) -> bool:
    """Whether the failure happened while establishing the connection (request certainly not sent)."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    seen: set[int] = set()
    pending: list[Any] = [err]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectTimeoutError | ConnectionRefusedError):
            return True
        if isinstance(current, BaseException):
            pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
            pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return False
