"""The reliability tests' connections (fast retries) serve here too; ``emu`` comes from the root conftest."""

from tests.reliability.conftest import connect

__all__ = ["connect"]
