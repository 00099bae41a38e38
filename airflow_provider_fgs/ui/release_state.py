"""A function's live release state, read through its connection: versions, aliases and their weights."""

from __future__ import annotations

from typing import Any

from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook


def release_state(conn_id: str, function: str) -> dict[str, Any]:
    """
    The published versions and the aliases of ``function`` (``package/name``), read-only.

    :param conn_id: the ``functiongraph`` connection the DAGs reach the function through.
    :param function: the function as the catalog names it.
    """
    package, _, name = function.rpartition("/")
    hook = FunctionGraphHook(functiongraph_conn_id=conn_id)
    urn = hook.resolve_urn(function_name=name, package=package or None)
    versions = hook.list_versions(urn)
    aliases = hook.list_aliases(urn)
    return {
        "conn_id": conn_id,
        "function": function,
        "function_urn": urn.unqualified,
        "versions": [
            {
                "version": v.version,
                "digest": v.digest,
                "last_modified": v.last_modified,
                "description": v.description,
                "memory_size": v.memory_size,
                "handler": v.handler,
            }
            for v in versions
        ],
        "aliases": [
            {"name": a.name, "version": a.version, "weights": a.weights, "description": a.description}
            for a in aliases
        ],
    }
