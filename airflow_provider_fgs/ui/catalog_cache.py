"""
The function catalog of one API-server process: each DAG's serialized form is read and parsed once per
version (its ``dag_hash``), not on every request.

A request costs one query of every current DAG's hash; only the DAGs whose hash changed since the last
request (new, edited) are read again, and DAGs deleted or marked stale leave the catalog. Permissions are
not cached: each request narrows the catalog to the DAGs its user may read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Set
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import func, select

from airflow_provider_fgs.ui.catalog import Found, FunctionEntry, catalog_of, function_calls, readable_part

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")
DAG_CHUNK = 500
"""DAGs read per query of their serialized form."""
MAX_DERIVED = 1024
"""The most values :meth:`CatalogCache.derived` keeps for one catalog."""


class CatalogCache:
    """
    The functions that the deployment's current DAGs call, kept between requests.

    :attr dags_read: serialized DAGs read and parsed since the cache was made (the tests and the bench
        read it to see that an unchanged DAG is not read again).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, tuple[str, list[Found]]] = {}  # dag id -> (dag hash, its calls)
        self._built: tuple[dict[str, str], list[FunctionEntry]] | None = None
        self._derived: dict[Hashable, Any] = {}  # computed from the whole catalog, dropped with it
        self.dags_read = 0

    def catalog(self, session: Session, readable: Set[str]) -> list[FunctionEntry]:
        """The functions that the current DAGs among ``readable`` call, sorted by name."""
        return self.read(session, readable)[0]

    def read(self, session: Session, readable: Set[str]) -> tuple[list[FunctionEntry], list[FunctionEntry]]:
        """The functions that the current DAGs among ``readable`` call, and those all current DAGs call."""
        versions = current_versions(session)
        with self._lock:
            changed = [dag_id for dag_id, dag_hash in versions.items() if self._hash_of(dag_id) != dag_hash]
            self._read(session, changed)
            for gone in self._calls.keys() - versions.keys():
                del self._calls[gone]
            if self._built is None or self._built[0] != versions:
                self._built = (versions, catalog_of(calls for _, calls in self._calls.values()))
                self._derived = {}
            everything = self._built[1]
        if versions.keys() <= readable:
            return everything, everything
        return readable_part(everything, readable), everything

    def derived(self, everything: list[FunctionEntry], key: Hashable, make: Callable[[], T]) -> T:
        """
        ``make()``, computed once per catalog and ``key``: for what depends on the whole catalog only
        (``everything`` as :meth:`read` returned it), never on a user's permissions.
        """
        with self._lock:
            if self._built is None or self._built[1] is not everything:
                return make()  # the catalog changed meanwhile
            if key not in self._derived:
                if len(self._derived) >= MAX_DERIVED:  # keys come from requests: keep them bounded
                    self._derived.clear()
                self._derived[key] = make()
            found: T = self._derived[key]
            return found

    def _hash_of(self, dag_id: str) -> str | None:
        cached = self._calls.get(dag_id)
        return None if cached is None else cached[0]

    def _read(self, session: Session, dag_ids: list[str]) -> None:
        from airflow.models.serialized_dag import SerializedDagModel

        for start in range(0, len(dag_ids), DAG_CHUNK):
            rows = SerializedDagModel.get_latest_serialized_dags(
                dag_ids=dag_ids[start : start + DAG_CHUNK], session=session
            )
            for row in rows:
                self._calls[row.dag_id] = (row.dag_hash, function_calls(row.dag_id, row.data or {}))
                self.dags_read += 1


def current_versions(session: Session) -> dict[str, str]:
    """``{dag_id: dag_hash}`` of every current DAG's latest serialized version, in one query."""
    from airflow.models.dag import DagModel
    from airflow.models.dag_version import DagVersion
    from airflow.models.serialized_dag import SerializedDagModel as Serialized

    latest = (
        select(DagVersion.dag_id, func.max(DagVersion.version_number).label("version_number"))
        .join(Serialized, Serialized.dag_version_id == DagVersion.id)
        .group_by(DagVersion.dag_id)
        .subquery()
    )
    rows = session.execute(
        select(Serialized.dag_id, Serialized.dag_hash)
        .join(DagVersion, Serialized.dag_version_id == DagVersion.id)
        .join(
            latest,
            (DagVersion.dag_id == latest.c.dag_id) & (DagVersion.version_number == latest.c.version_number),
        )
        .join(DagModel, DagModel.dag_id == Serialized.dag_id)
        .where(DagModel.is_stale.is_(False))  # deleted DAG files leave their rows behind, marked stale
    ).all()
    return {row.dag_id: row.dag_hash for row in rows}


CATALOG = CatalogCache()
"""The API-server process's catalog (each API-server worker process has its own)."""
