"""
Tests that need what a machine may lack (Chromium, PostgreSQL, Redis) skip with a one-line reason each;
CI, which installs them, sets ``FGS_REQUIRE_ALL_TESTS=1`` so that such a test fails instead of skipping.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_ALL_TESTS = "FGS_REQUIRE_ALL_TESTS"


def _required(missing: str) -> str | None:
    """The failure message when every test must run, else ``None``."""
    if os.environ.get(REQUIRE_ALL_TESTS) == "1":
        return f"{missing} ({REQUIRE_ALL_TESTS}=1: every test must run here)"
    return None


def require(missing: str | None) -> None:
    """
    In a test or fixture: go on when nothing is missing; otherwise skip with ``missing`` as the reason,
    or fail when ``FGS_REQUIRE_ALL_TESTS=1``.

    :param missing: what the machine lacks and how to install it, or ``None``.
    """
    if missing is None:
        return
    failure = _required(missing)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    pytest.skip(missing)


def needs(missing: str | None) -> pytest.MarkDecorator:
    """
    A module's or test's mark: the test is skipped with ``missing`` as the reason, or failed when
    ``FGS_REQUIRE_ALL_TESTS=1``, before any of its fixtures starts (``tests/conftest.py`` applies it).

    :param missing: what the machine lacks and how to install it, or ``None``.
    """
    return pytest.mark.machine(missing)
