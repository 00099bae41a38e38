"""``FunctionGraphEmulator``: the emulator in a background thread of the current process."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType

import uvicorn

from airflow_provider_fgs.emulator.app import EmulatorApp
from airflow_provider_fgs.emulator.defaults import (
    DEFAULT_ACCESS_KEYS,
    DEFAULT_PROJECT_ID,
    DEFAULT_REGION,
    DEFAULT_TOKEN_TTL,
    DEFAULT_USERS,
)
from airflow_provider_fgs.emulator.deployments import ManagedRegistry
from airflow_provider_fgs.emulator.faults import Fault, FaultKind
from airflow_provider_fgs.emulator.iam import TokenStore
from airflow_provider_fgs.emulator.lockout import LockoutRules, Lockouts
from airflow_provider_fgs.emulator.pool import DEFAULT_MAX_WORKERS, WorkerPool
from airflow_provider_fgs.emulator.state import EmulatorState
from airflow_provider_fgs.protocol.async_invoke import DEFAULT_QUERY_WINDOW_S
from airflow_provider_fgs.protocol.invoke import SYNC_GATEWAY_TIMEOUT_S
from airflow_provider_fgs.protocol.urn import FunctionUrn

_START_TIMEOUT = 30.0

PathLike = str | os.PathLike[str]


class FunctionGraphEmulator:
    """
    A local FunctionGraph + IAM server running real Python handlers; use it as a context manager.

    :param functions_dir: directory (or directories) of handler files ``<name>.py``.
    :param host: address to listen on.
    :param port: port to listen on; ``0`` picks a free one.
    :param region: region in URNs.
    :param project_id: the project id served.
    :param project_name: the project name accepted in IAM scopes (defaults to the region, as on Huawei Cloud).
    :param users: IAM users, ``{domain: {user: password}}``.
    :param access_keys: AK/SK pairs accepted for signed requests, ``{ak: sk}``.
    :param token_ttl: IAM token lifetime in seconds.
    :param max_workers: most invocations running at once (each in its own worker process).
    :param prestart_workers: worker processes started up front.
    :param lockout: lock an access key after repeated failed signatures and an IAM user after repeated
        wrong passwords, as the real platform does (``LockoutRules()`` for Huawei Cloud's defaults);
        ``None`` (default) never locks.
    :param gateway_timeout: seconds after which a synchronous answer is cut with 504 ``APIG.0201``
        (the function keeps running), 90 as on FunctionGraph.
    :param async_query_window: how far back an async status query without ``query_begin_time``
        looks, one hour as on FunctionGraph.
    :param seed: seed of the weighted split of alias calls between versions (reproducible tests).
    """

    def __init__(
        self,
        functions_dir: PathLike | Sequence[PathLike],
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = DEFAULT_REGION,
        project_id: str = DEFAULT_PROJECT_ID,
        project_name: str | None = None,
        users: Mapping[str, Mapping[str, str]] | None = None,
        access_keys: Mapping[str, str] | None = None,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        max_workers: int = DEFAULT_MAX_WORKERS,
        prestart_workers: int = 2,
        lockout: LockoutRules | None = None,
        gateway_timeout: float = SYNC_GATEWAY_TIMEOUT_S,
        async_query_window: float = DEFAULT_QUERY_WINDOW_S,
        seed: int | None = None,
    ) -> None:
        dirs = [functions_dir] if isinstance(functions_dir, str | os.PathLike) else list(functions_dir)
        FunctionUrn(region=region, project_id=project_id, package="default", name="probe")  # validates both
        self.host = host
        self.port = port
        self.region = region
        self.project_id = project_id
        self.project_name = project_name or region
        self._registry = ManagedRegistry(dirs, seed=seed)
        self._users = users if users is not None else DEFAULT_USERS
        self._access_keys = access_keys if access_keys is not None else DEFAULT_ACCESS_KEYS
        self._token_ttl = token_ttl
        self._max_workers = max_workers
        self._prestart = prestart_workers
        self._lockout = lockout
        self._gateway_timeout = gateway_timeout
        self._async_query_window = async_query_window
        self._state: EmulatorState | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> FunctionGraphEmulator:
        """Start serving; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("The emulator is already running")
        pool = WorkerPool(max_workers=self._max_workers)
        self._state = EmulatorState(
            region=self.region,
            project_id=self.project_id,
            project_name=self.project_name,
            users=self._users,
            access_keys=self._access_keys,
            registry=self._registry,
            pool=pool,
            tokens=TokenStore(self._token_ttl),
            lockouts=Lockouts(self._lockout),
            gateway_timeout=self._gateway_timeout,
            async_query_window=self._async_query_window,
        )
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: no Nagle stall between the response head and body writes.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
            pool.prestart(self._prestart)
        except BaseException:
            sock.close()
            pool.close()
            raise
        port = sock.getsockname()[1]
        host = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self._url = f"http://{host}:{port}"
        config = uvicorn.Config(
            EmulatorApp(self._state),
            log_config=None,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            date_header=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
            timeout_keep_alive=75,
            backlog=2048,
            limit_concurrency=None,
            h11_max_incomplete_event_size=256 * 1024,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name="fgs-emulator", daemon=True
        )
        self._thread.start()
        waited = 0.0
        while not server.started:
            if not self._thread.is_alive() or waited > _START_TIMEOUT:
                self.stop()
                raise RuntimeError(f"The FunctionGraph emulator did not start on {self._url}")
            self._thread.join(0.01)
            waited += 0.01
        return self

    def stop(self) -> None:
        """Stop the server and kill every worker process (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._state is not None:
            self._state.pool.close()
        self._thread = self._server = None

    def __enter__(self) -> FunctionGraphEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # information -----------------------------------------------------------------------------------
    @property
    def state(self) -> EmulatorState:
        if self._state is None:
            raise RuntimeError("The emulator is not running")
        return self._state

    @property
    def url(self) -> str:
        """Base URL serving both FunctionGraph and IAM routes, e.g. ``http://127.0.0.1:PORT``."""
        if self._url is None:
            raise RuntimeError("The emulator is not running")
        return self._url

    def urn(self, name: str, qualifier: str = "latest", package: str = "default") -> str:
        """The full URN of function ``name`` in this emulator."""
        return str(
            FunctionUrn(
                region=self.region,
                project_id=self.project_id,
                package=package,
                name=name,
                qualifier=qualifier,
            )
        )

    # test controls ---------------------------------------------------------------------------------
    def inject_fault(
        self,
        kind: FaultKind,
        count: int | None = 1,
        function: str | None = None,
        delay: float = 0.0,
        retry_after: float | None = None,
        route: str | None = None,
    ) -> None:
        """
        Make the next ``count`` matching FunctionGraph requests fail (``None``: until cleared).

        :param kind: ``throttle`` (429 FSS.0429), ``unavailable`` (503 FSS.0503), ``latency`` (sleep
            ``delay`` then serve), ``drop`` (close the connection without an answer, before the function
            runs), ``drop_after`` (run the function, then close the connection without an answer),
            ``truncate`` (headers and half of the body, then close), ``garbage`` (200, a body neither
            JSON nor UTF-8), ``bad_log`` (an undecodable ``X-Cff-Function-Log``), ``invalid_token``
            (403 ``FSS.0403`` "invalid token"), or a function failure shaped otherwise: ``error_500``,
            ``error_code_only``, ``error_bare``, or ``stall`` (run the function, keep the connection
            silent for ``delay`` seconds, then answer; see
            :class:`~airflow_provider_fgs.emulator.faults.Fault`).
        :param function: only requests for this function name.
        :param retry_after: ``Retry-After`` seconds for ``throttle`` / ``unavailable``.
        :param route: only this route: ``invoke``, ``invoke_async``, ``async_status``, ``cancel``, ``config``,
            ``async_config`` (reading a function's async settings), ``update_async_config``, ``log_stream``,
            ``list``, or ``token`` (IAM; a fault without a route never touches IAM).
        """
        self.state.faults.add(
            Fault(
                kind=kind,
                remaining=count,
                function=function,
                route=route,
                delay=delay,
                retry_after=retry_after,
            )
        )

    def clear_faults(self) -> None:
        self.state.faults.clear()

    def set_gateway_timeout(self, seconds: float) -> None:
        """Cut synchronous answers after ``seconds`` from now on (504 ``APIG.0201``)."""
        self.state.gateway_timeout = seconds

    def advance_clock(self, seconds: float) -> None:
        """
        Move the emulator's clock forward: async records age (query windows) without waiting.
        Only the emulator's view of time moves; function timeouts still use real time.
        """
        self.state.clock_offset += seconds

    def revoke_tokens(self) -> None:
        """Revoke every IAM token issued so far."""
        self.state.tokens.revoke()

    def set_token_ttl(self, seconds: float) -> None:
        """Lifetime of tokens issued from now on."""
        self.state.tokens.ttl = seconds

    def set_credential_lifetime(self, seconds: float) -> None:
        """Lifetime of the temporary credentials issued from now on (IAM, STS, metadata, pod identity)."""
        self.state.credentials.lifetime = seconds

    def set_instance_agency(self, bound: bool) -> None:
        """Whether the emulated ECS instance has an agency (without one its metadata service answers 401)."""
        self.state.credentials.instance_agency = bound

    def set_metadata_tokens(self, supported: bool) -> None:
        """Whether the metadata service issues session tokens (an older one answers 404 to ask for one)."""
        self.state.credentials.metadata_tokens = supported

    def credentials_issued(self, source: str) -> int:
        """Temporary credentials issued so far by ``source``: ``federated``, ``oidc``, ``metadata``,
        ``pod_identity``."""
        return self.state.credentials.issued.get(source, 0)

    def invocation_count(self, function: str | None = None) -> int:
        """Invocations that reached a handler (all functions when ``function`` is ``None``)."""
        return self.state.stats.invocations(function)

    def request_count(self, route: str | None = None) -> int:
        """
        Requests received on ``route`` (all when ``None``): ``token``, ``invoke``, ``invoke_async``,
        ``async_status``, ``cancel``, ``config``, ``async_config``, ``update_async_config``, ``log_stream``,
        ``list``, ``health``, ``unknown`` (and the management routes).
        """
        return self.state.stats.requests(route)

    def reset_stats(self) -> None:
        self.state.stats.reset()

    def rejection_count(self, kind: str | None = None) -> int:
        """
        Requests refused for their credentials: ``signature`` (AK/SK), ``password`` (IAM), ``token``,
        ``locked`` (a locked access key or user; all when ``None``).
        """
        return self.state.stats.rejections(kind)

    @property
    def locks_triggered(self) -> int:
        """How many times an access key or IAM user got locked."""
        return self.state.lockouts.locks_triggered

    def live_workers(self) -> int:
        """Worker processes alive now."""
        return self.state.pool.live_workers()

    def __repr__(self) -> str:
        return f"FunctionGraphEmulator(url={self._url!r}, project_id={self.project_id!r})"


__all__: list[str] = ["FunctionGraphEmulator"]
