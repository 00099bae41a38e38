"""Headless Chromium (Debian's ``chromium`` package) driven by Playwright, for the UI checks.

Playwright never downloads a browser here: it launches the system Chromium given by
``FGS_CHROMIUM`` (default ``/usr/bin/chromium``; CI installs it with ``.ci/install-browser.sh``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

CHROMIUM = Path(os.environ.get("FGS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}


def chromium_missing_reason() -> str | None:
    """Why the browser checks cannot run here, or None when Chromium is installed."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        return (
            f"Chromium not found at {CHROMIUM} (install it with .ci/install-browser.sh, "
            "or point FGS_CHROMIUM at a Chromium binary)"
        )
    return None


@contextmanager
def chromium(user_data_dir: Path) -> Iterator[BrowserContext]:
    """A fresh headless Chromium profile in ``user_data_dir``; closed (process and all) on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(user_data_dir),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]},
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()
