"""Fail a wait for an asynchronous invocation up front when the function keeps no status records."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow_provider_fgs.protocol.errors import AsyncStatusPersistenceDisabledError

if TYPE_CHECKING:
    from airflow_provider_fgs.hooks.functiongraph import FunctionGraphHook
    from airflow_provider_fgs.protocol.urn import FunctionUrn

_log = logging.getLogger(__name__)  # stdlib, as the hook's: Airflow routes it to the task log


def require_async_status_persistence(
    hook: FunctionGraphHook, function: FunctionUrn, *, request_id: str | None = None
) -> None:
    """
    Raise when ``function``'s async settings say that async status persistence is off.

    Without it FunctionGraph keeps no status record, so the wait would only end at the
    ``missing_record_timeout``. Settings that cannot be read (the hook logs why) or that do not say
    are no reason to fail: the wait then goes on as it would without this check.

    :param hook: the task's hook (its settings are cached per process and function).
    :param function: the function the invocation runs on.
    :param request_id: the invocation a sensor waits for; ``None`` before the operator starts one.
    :raises AsyncStatusPersistenceDisabledError: the settings answer ``enable_async_status_log=false``.
    """
    config = hook.async_invoke_config(function)
    if config is None:
        return
    if config.enable_async_status_log is None:
        _log.warning(
            "The async settings of %s do not say whether async status persistence is on "
            "(no enable_async_status_log): not checked",
            function,
        )
        return
    if not config.enable_async_status_log:
        raise AsyncStatusPersistenceDisabledError(function_urn=str(function), request_id=request_id)
