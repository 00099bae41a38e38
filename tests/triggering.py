"""Running a trigger the way the triggerer does: on an event loop, until its first event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


async def first_event(trigger: BaseTrigger) -> TriggerEvent:
    """The trigger's first event (at most 60 s); its generator is closed afterwards."""
    events: AsyncIterator[TriggerEvent] = trigger.run()
    try:
        return await asyncio.wait_for(anext(events), timeout=60)
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def run_trigger(trigger: BaseTrigger) -> dict[str, Any]:
    """Run ``trigger`` on a fresh event loop and return its first event's payload, checked to be JSON."""
    payload: dict[str, Any] = asyncio.run(first_event(trigger)).payload
    json.dumps(payload)  # Airflow stores events as JSON
    return payload
