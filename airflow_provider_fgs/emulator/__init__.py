"""Local FunctionGraph + IAM emulator that runs real Python handlers.

``FunctionGraphEmulator`` is imported lazily so that worker processes, which import
``airflow_provider_fgs.emulator.worker``, stay free of the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_fgs.emulator.server import FunctionGraphEmulator

__all__ = ["FunctionGraphEmulator"]


def __getattr__(name: str) -> Any:
    if name == "FunctionGraphEmulator":
        from airflow_provider_fgs.emulator.server import FunctionGraphEmulator

        return FunctionGraphEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
