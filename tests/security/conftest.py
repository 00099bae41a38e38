"""The reliability fixtures (a clean session emulator, connections with fast retries) serve here too."""

from tests.reliability.conftest import connect, emu

__all__ = ["connect", "emu"]
