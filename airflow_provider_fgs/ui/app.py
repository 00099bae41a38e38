"""
The FunctionGraph view's FastAPI app, mounted by the Airflow API server under ``/functiongraph``.

Its page is static; its data (JSON, also for scripts) needs an Airflow login (the UI's session cookie or
a ``Bearer`` token) and shows only the DAGs that the deployment's auth manager lets the user read.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any, Literal

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.exceptions import AirflowNotFoundException  # type: ignore[attr-defined]  # 3.1 exports it; stubs lag
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from airflow_provider_fgs import __version__
from airflow_provider_fgs.protocol.errors import FunctionGraphError
from airflow_provider_fgs.ui.batches import recent_batches
from airflow_provider_fgs.ui.catalog import BATCH_KINDS, INVOKING_KINDS, FunctionCall, FunctionEntry
from airflow_provider_fgs.ui.catalog_cache import CATALOG
from airflow_provider_fgs.ui.invocations import MAX_PAGE, recent_invocations
from airflow_provider_fgs.ui.release_state import release_state
from airflow_provider_fgs.ui.stats import WINDOWS, invocation_stats
from airflow_provider_fgs.ui.task_filter import TaskFilter

log = logging.getLogger(__name__)
MAX_CALLS = 1000
"""The most calls of one function the functions listing gives."""


def _readable_catalog(user: Any, session: Any) -> list[FunctionEntry]:
    """The functions of the DAGs that ``user`` may read (per the auth manager), from their latest version."""
    return _catalogs(user, session)[0]


def _catalogs(user: Any, session: Any) -> tuple[list[FunctionEntry], list[FunctionEntry]]:
    """The functions of the DAGs that ``user`` may read, and of all DAGs (to tell how exact a filter is)."""
    readable = get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session)
    return CATALOG.read(session, readable) if readable else ([], [])


def _tasks(
    user: Any,
    session: Any,
    kinds: frozenset[str],
    function: str | None,
    conn_id: str | None,
    dag_id: str | None,
) -> TaskFilter:
    """The tasks of ``kinds`` calling ``function`` (any if ``None``) in ``dag_id`` that ``user`` may read."""
    readable, everything = _catalogs(user, session)

    def make() -> TaskFilter:
        calls = _calls(readable, kinds, function, conn_id, dag_id)
        return TaskFilter.of(calls, every_call=_calls(everything, kinds, None, None, None))

    if readable is not everything:  # depends on this user's permissions: made for this request
        return make()
    return CATALOG.derived(everything, ("tasks", kinds, function, conn_id, dag_id), make)


def database_error_response(request: Request, error: SQLAlchemyError) -> JSONResponse:
    """
    A failed query of the metadata database as a JSON error the page shows (HTTP 503), logged whole; the
    answer names the database's own message, never the statement or its parameters.
    """
    log.error("The FunctionGraph view's query for %s failed", request.url.path, exc_info=error)
    cause = getattr(error, "orig", None) or error
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return JSONResponse(
        status_code=503,
        content={"detail": f"The metadata database could not answer: {type(cause).__name__}: {message}"},
    )


def _calls(
    catalog: list[FunctionEntry],
    kinds: frozenset[str],
    function: str | None,
    conn_id: str | None,
    dag_id: str | None,
) -> list[FunctionCall]:
    """The tasks of these ``kinds`` that call ``function`` (every function when ``None``), in ``dag_id``."""
    if function is not None:
        catalog = [e for e in catalog if e.function == function and conn_id in (None, e.conn_id)]
    return [
        call
        for entry in catalog
        for call in entry.calls
        if call.kind in kinds and dag_id in (None, call.dag_id)
    ]


def _entry(catalog: list[FunctionEntry], conn_id: str, function: str) -> FunctionEntry:
    for entry in catalog:
        if entry.key == (conn_id, function):
            return entry
    raise HTTPException(
        404, f"No DAG you can read calls function {function!r} through connection {conn_id!r}"
    )


def create_app() -> FastAPI:
    """The view's app: its page at ``/`` and its JSON under ``/api``."""
    app = FastAPI(
        title="FunctionGraph view",
        version=__version__,
        description="Which DAGs call which functions, their recent invocations, and their live releases.",
    )

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, error: SQLAlchemyError) -> JSONResponse:
        return database_error_response(request, error)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return resources.files("airflow_provider_fgs.ui").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/charts.js", include_in_schema=False)
    def charts() -> Response:
        script = resources.files("airflow_provider_fgs.ui").joinpath("charts.js").read_text(encoding="utf-8")
        return Response(script, media_type="text/javascript")

    @app.get("/api/functions")
    def functions(
        user: GetUserDep,
        session: SessionDep,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        search: str | None = None,
        calls_limit: Annotated[int, Query(ge=1, le=MAX_CALLS)] = 25,
    ) -> dict[str, Any]:
        """
        The functions the DAGs you may read call, each with its first ``calls_limit`` DAGs and tasks (and
        how many there are); with ``search``, those whose name or a calling DAG's id contains it (any case).
        """
        catalog = _readable_catalog(user, session)
        if search:
            catalog = [entry for entry in catalog if entry.matches(search)]
        return {
            "functions": [entry.to_dict(calls_limit) for entry in catalog[offset : offset + limit]],
            "total_entries": len(catalog),
        }

    @app.get("/api/invocations")
    def invocations(
        user: GetUserDep,
        session: SessionDep,
        function: str | None = None,
        conn_id: str | None = None,
        dag_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 25,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """Recent invocations (newest first), of one function when ``function`` is given."""
        tasks = _tasks(user, session, INVOKING_KINDS, function, conn_id, dag_id)
        rows, has_more = recent_invocations(session, tasks, limit=limit, offset=offset)
        return {"invocations": rows, "has_more": has_more, "offset": offset, "limit": limit}

    @app.get("/api/stats")
    def stats(
        user: GetUserDep,
        session: SessionDep,
        window: Annotated[Literal["24h", "7d", "30d"], Query()] = "24h",
        function: str | None = None,
        conn_id: str | None = None,
        dag_id: str | None = None,
    ) -> dict[str, Any]:
        """
        Invocations over ``window`` in equal intervals (hours over 24 h, 6 h over 7 d, days over 30 d):
        per interval, how many ended by outcome (``success``, ``function_error``, ``platform_error``,
        ``outcome_unknown``), the function's duration ``p50_ms`` and ``p95_ms``, and ``gb_seconds``
        billed; of one function when ``function`` is given.
        """
        tasks = _tasks(user, session, INVOKING_KINDS, function, conn_id, dag_id)
        return invocation_stats(session, tasks, WINDOWS[window], datetime.now(UTC))

    @app.get("/api/batches")
    def batches(
        user: GetUserDep,
        session: SessionDep,
        function: str | None = None,
        conn_id: str | None = None,
        dag_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 25,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """
        Running and recent batches (newest first): items, how many ended, counts by outcome; of one
        function when ``function`` is given.
        """
        tasks = _tasks(user, session, BATCH_KINDS, function, conn_id, dag_id)
        rows, has_more = recent_batches(session, tasks, limit=limit, offset=offset)
        return {"batches": rows, "has_more": has_more, "offset": offset, "limit": limit}

    @app.get("/api/release")
    def release(user: GetUserDep, session: SessionDep, conn_id: str, function: str) -> dict[str, Any]:
        """The function's live versions and aliases, read through its connection (nothing is changed)."""
        entry = _entry(_readable_catalog(user, session), conn_id, function)
        if entry.templated:
            raise HTTPException(
                400, f"Function {function!r} is a template: its name is only known when a task runs"
            )
        try:
            return release_state(conn_id, function)
        except AirflowNotFoundException:
            raise HTTPException(404, f"Connection {conn_id!r} is not defined in this deployment") from None
        except FunctionGraphError as err:
            raise HTTPException(502, f"FunctionGraph refused the read of {function!r}: {err}") from None

    return app
