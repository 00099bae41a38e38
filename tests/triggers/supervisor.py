"""A stand-in for the triggerer's supervisor, for the trigger code that reads and writes its task's XComs."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any


class InterleavingSupervisor:
    """Stores XComs as the Execution API does; before each request, the other runs may go a few steps."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.xcoms: dict[str, Any] = {}
        self.on_request: Callable[[Any], None] | None = None  # called with each request, as it is served

    async def asend(self, message: Any) -> Any:
        for _ in range(self.rng.randint(0, 4)):
            await asyncio.sleep(0)
        if self.on_request is not None:
            self.on_request(message)
        if type(message).__name__ == "SetXCom":
            self.xcoms[message.key] = message.value
            return None
        if type(message).__name__ == "DeleteXCom":
            self.xcoms.pop(message.key, None)
            return None
        return SimpleNamespace(value=self.xcoms.get(message.key))
