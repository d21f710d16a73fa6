"""The drill pages in Debian's Chromium: the list and a report, reached by following the
links from /ha as an operator would; axe-core (no serious or critical violation) and a
screenshot of each, as in test_browser.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.requires import Resource, requires
from tests.web.conftest import Demo
from tests.web.test_browser import SHOTS, Browser
from tests.web.test_browser_roles import sign_in, user
from tests.web.test_drill_pages import drill_run

pytestmark = pytest.mark.requires("chromium")


@pytest.fixture(scope="module")
def browser(served: str) -> Iterator[Browser]:
    requires(Resource.chromium)
    requires(Resource.playwright)
    from playwright.sync_api import sync_playwright

    shots = SHOTS / "drills" / (os.environ.get("PYTEST_XDIST_WORKER") or "")
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    off_machine: list[str] = []
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_FLAGS))
        context = chromium.new_context(viewport={"width": 1366, "height": 800})

        def only_here(route: Any) -> None:
            if route.request.url.startswith(served + "/"):
                route.continue_()
            else:
                off_machine.append(route.request.url)
                route.abort()

        context.route("**/*", only_here)
        yield Browser(context.new_page(), served, shots)
        chromium.close()
    assert not off_machine, off_machine


def test_an_operator_reads_a_drill_report_from_the_ha_page(browser: Browser, demo: Demo) -> None:
    run_id = drill_run(demo, "<b>web-db-1</b>", datetime(2026, 12, 2, 3, 0, tzinfo=UTC))
    sign_in(browser, user(demo, "operator"))
    browser.go("/ha")
    browser.page.click("a[href='/ha/drills']")
    assert browser.path() == "/ha/drills"
    browser.check("drills")
    browser.page.click(f"a[href='/ha/drills/{run_id}']")
    assert browser.path() == f"/ha/drills/{run_id}"
    cell = browser.page.locator("#drill-vms tbody tr td").first
    assert cell.inner_text() == "<b>web-db-1</b>"
    browser.check("drill-report")
    assert len(browser.saved) == 2 and all(p.stat().st_size > 0 for p in browser.saved)
