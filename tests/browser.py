"""Debian's Chromium for the tests that look at pages in a real browser.

A test that uses it says so with ``requires(Resource.chromium)`` (tests/requires.py): missing,
it is skipped with what to install, or fails under CI=true.
"""

from __future__ import annotations

from tests.requires import CHROMIUM

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS"]

#: Headless on a closed network, as root: no sandbox, no GPU, no background connections.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
