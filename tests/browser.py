"""Debian's Chromium for the tests that look at pages in a real browser.

Missing, these tests are skipped with what to install, except under CI=true, where a
missing browser is a failure: CI must not pass by skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: Headless on a closed network, as root: no sandbox, no GPU, no background connections.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def require_chromium(*, playwright: bool = False) -> Path:
    """The browser (and Playwright, when asked), or skip / fail saying what is missing."""
    missing = [] if CHROMIUM.exists() else ["/usr/bin/chromium (apt-get install chromium)"]
    if playwright:
        try:
            import playwright.sync_api
        except ImportError:
            missing.append("playwright (pip install -e '.[dev]')")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("the browser test needs " + " and ".join(missing))
        pytest.skip("missing " + " and ".join(missing))
    return CHROMIUM
