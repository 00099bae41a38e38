"""FunctionUpdatedTrigger: poll a function's configuration from the triggerer until an update shows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fgs.hooks.functiongraph_async import FunctionGraphAsyncHook
from airflow_provider_fgs.protocol.errors import FunctionGraphError, error_to_event
from airflow_provider_fgs.protocol.functions import pending_reasons


class FunctionUpdatedTrigger(BaseTrigger):
    """
    Read the function's configuration (an idempotent read, so a re-run trigger is harmless) every
    ``poll_interval`` seconds until its code digest and fields match.

    Fires ``{"status": "done", "config": FunctionConfig.to_dict()}``, or ``{"status": "error",
    "error": error_to_event(...)}`` when a read failed. The sensor's ``timeout`` bounds the wait.

    :param functiongraph_conn_id: the Airflow connection id.
    :param function_urn: the function's full URN.
    :param digest: the code digest to wait for, or ``None``.
    :param expected: configuration fields to wait for, e.g. ``{"memory_size": 256}``.
    :param poll_interval: seconds between two reads.
    """

    def __init__(
        self,
        *,
        functiongraph_conn_id: str,
        function_urn: str,
        digest: str | None = None,
        expected: dict[str, Any] | None = None,
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__()
        self.functiongraph_conn_id = functiongraph_conn_id
        self.function_urn = function_urn
        self.digest = digest
        self.expected = dict(expected or {})
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.{type(self).__name__}",
            {
                "functiongraph_conn_id": self.functiongraph_conn_id,
                "function_urn": self.function_urn,
                "digest": self.digest,
                "expected": self.expected,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async with FunctionGraphAsyncHook(self.functiongraph_conn_id) as hook:
            while True:
                try:
                    config = await hook.aget_function_config(self.function_urn)
                except FunctionGraphError as err:
                    yield TriggerEvent({"status": "error", "error": error_to_event(err)})
                    return
                reasons = pending_reasons(config, digest=self.digest, expected=self.expected)
                if not reasons:
                    break
                self.log.info("%s not updated yet: %s", self.function_urn, "; ".join(reasons))
                await asyncio.sleep(self.poll_interval)
        yield TriggerEvent({"status": "done", "config": config.to_dict()})
