"""The dashboard's flows in Debian's Chromium, driven by Playwright over real HTTP.

One browser for the module, few page loads: sign in, search and sort the VM list, open a VM
and zoom its chart by dragging, flag a VM from the sprawl page and see its case, read the API
docs with every request off this machine refused. On every dashboard page axe-core (installed
by the set-up with axe-playwright-python) must find no serious or critical violation, and a
screenshot of every page is saved in var/test-artifacts/dashboard-screenshots/ (SHOTS).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from corral.inventory.filters import VMFilter
from tests.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.conftest import ROOT
from tests.requires import Resource, requires
from tests.web.conftest import Demo

pytestmark = pytest.mark.requires("chromium")

#: Where the run leaves a screenshot of every page for review (var/ is not committed).
SHOTS = ROOT / "var" / "test-artifacts" / "dashboard-screenshots"
AXE = (files("axe_playwright_python") / "axe.min.js").read_text()


class Browser:
    """One page in one browser, with the checks every dashboard page gets."""

    def __init__(self, page: Any, base: str, shots: Path) -> None:
        self.page, self.base, self.shots = page, base, shots
        self.saved: list[Path] = []
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def check(self, name: str) -> None:
        """Screenshot the page, then axe it: no serious or critical violation."""
        shot = self.shots / f"{len(self.saved) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(shot), full_page=True)
        self.saved.append(shot)
        self.page.evaluate(AXE)
        result = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        )
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        assert not bad, json.dumps(
            [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in bad], indent=1
        )
        assert not self.errors, self.errors

    def sign_in(self, token: str) -> None:
        """Through the sign-in form, as a person would."""
        self.page.fill("#token", token)
        self.page.click("form.card button[type=submit]")

    def path(self) -> str:
        parts = urlsplit(self.page.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture(scope="module")
def browser(served: str, demo: Demo) -> Iterator[Browser]:
    requires(Resource.chromium)
    requires(Resource.playwright)
    from playwright.sync_api import sync_playwright

    worker = os.environ.get("PYTEST_XDIST_WORKER")  # each pytest-xdist worker its own folder
    shots = SHOTS / worker if worker else SHOTS
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):  # this file's own; the folders of the other flows stay
        old.unlink()
    off_machine: list[str] = []
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_FLAGS))
        context = chromium.new_context(viewport={"width": 1366, "height": 800})

        def only_here(route: Any) -> None:
            url = route.request.url
            if url.startswith(served + "/"):
                route.continue_()
            else:
                off_machine.append(url)
                route.abort()

        context.route("**/*", only_here)
        b = Browser(context.new_page(), served, shots)
        b.go("/login")
        b.sign_in(demo.token)  # each test starts signed in (they may run in any order)
        yield b
        chromium.close()
    print(f"\ndashboard screenshots: {shots}")
    assert not off_machine, off_machine


def test_axe_runs_here_so_its_check_means_something(browser: Browser) -> None:
    """Control: on this page under this CSP, axe loads and reports a violation made for it."""
    browser.go("/hosts")
    browser.page.evaluate("document.querySelector('label[for=q]')?.remove()")
    browser.page.evaluate(
        "document.querySelector('main').append(Object.assign(document.createElement('input'),"
        " {type: 'text'}))"
    )
    browser.page.evaluate(AXE)
    found = browser.page.evaluate(
        "async () => (await axe.run(document)).violations.map(v => [v.id, v.impact])"
    )
    assert ["label", "critical"] in found


def test_sign_in_lands_on_the_fleet_page(browser: Browser, demo: Demo) -> None:
    browser.page.context.clear_cookies()
    browser.go("/vms")
    assert browser.path() == "/login?next=%2Fvms"
    browser.check("sign-in")
    browser.sign_in(demo.token)
    assert browser.path() == "/vms"
    (cookie,) = [c for c in browser.page.context.cookies() if c["name"] == "corral_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert demo.token not in browser.page.content()
    browser.go("/admin")
    assert browser.page.locator(".tile .n").first.inner_text() == str(demo.inv.list_vms().total)
    browser.check("administrator")


def test_search_filter_and_sort_the_vm_list(browser: Browser, demo: Demo) -> None:
    running = demo.inv.list_vms().items
    word = running[0].name.split("-")[0]  # a department prefix, shared by several VMs
    browser.go("/vms")
    browser.page.fill("#q", word)
    browser.page.select_option("#state", "running")
    browser.page.click("form.filters button[type=submit]")
    query = parse_qs(urlsplit(browser.page.url).query)
    assert query["q"] == [word] and query["state"] == ["running"]
    browser.page.click("th a:has-text('Memory')")
    names = browser.page.locator("tbody td:first-child a").all_inner_texts()
    want = demo.inv.list_vms(VMFilter(search=word, state="running"), sort="memory_mib").items
    assert names == [v.name for v in want] and names
    assert "sort=memory_mib" in browser.page.url  # a link that can be shared
    browser.check("vm-list")


def test_open_a_vm_and_zoom_its_chart(browser: Browser, demo: Demo) -> None:
    browser.go("/vms?state=running")
    browser.page.click("tbody td:first-child a >> nth=0")
    browser.page.wait_for_load_state("load")  # dash.js (deferred) is listening
    browser.page.locator("#chart").scroll_into_view_if_needed()
    before = parse_qs(urlsplit(browser.page.url).query)
    assert browser.page.locator("#chart polyline").get_attribute("points")
    start = int(browser.page.locator("#chart").get_attribute("data-start") or 0)
    end = int(browser.page.locator("#chart").get_attribute("data-end") or 0)
    box = browser.page.locator("#chart").bounding_box()
    assert box and not before
    y = box["y"] + box["height"] / 2
    browser.page.mouse.move(box["x"] + box["width"] * 0.4, y)
    browser.page.mouse.down()
    browser.page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
    with browser.page.expect_navigation():
        browser.page.mouse.up()
    zoomed = parse_qs(urlsplit(browser.page.url).query)
    lo, hi = int(zoomed["from"][0]), int(zoomed["to"][0])
    assert start < lo < hi < end and hi - lo < (end - start) / 3
    assert browser.page.locator("#chart").get_attribute("data-start") == str(lo)
    assert browser.page.locator("#chart polyline").get_attribute("points")
    browser.check("vm-detail-zoomed")


def test_flag_a_vm_from_sprawl_and_see_its_case(browser: Browser, demo: Demo) -> None:
    browser.go("/sprawl?category=powered_off")
    browser.check("sprawl")
    row = browser.page.locator("tr:has(button:has-text('Flag for reclamation'))").first
    name = row.locator("td:first-child").inner_text()
    row.locator("button").click()
    assert browser.path().startswith("/reclaim/")
    case_id = int(browser.path().rsplit("/", 1)[1])
    case = demo.app.state.reclaim.case(case_id)
    # the case names the user the sign-in token belongs to
    assert (case.vm, case.state, case.flagged_by) == (name, "flagged", "local-admin")
    assert case.evidence["detector"] == "powered_off"
    assert name in browser.page.locator("main").inner_text()
    browser.check("case")
    browser.go("/reclaim")
    assert browser.page.locator(f"tbody a[href='/reclaim/{case_id}']").count() == 1
    browser.check("cases")


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("manager", "/manager"),
        ("hosts", "/hosts"),
        ("events", "/events"),
        ("plan", "/plan"),
        ("quotas", "/quotas"),
        ("blueprints", "/blueprints"),
        ("units", "/units"),
    ],
)
def test_other_pages_are_accessible(browser: Browser, name: str, path: str) -> None:
    browser.go(path)
    assert browser.page.locator("h1").count() == 1
    browser.check(name)


def test_api_docs_work_offline(browser: Browser) -> None:
    """Every request off this machine is aborted (the fixture asserts none was tried)."""
    browser.go("/docs")
    browser.page.wait_for_selector(".opblock", timeout=20_000)
    assert browser.page.locator(".opblock").count() > 20
    shot = browser.shots / "99-api-docs.png"
    browser.page.screenshot(path=str(shot))
    browser.saved.append(shot)


def test_sign_out_ends_the_session(browser: Browser, demo: Demo) -> None:
    browser.go("/admin")
    browser.page.click("form.who button")
    assert browser.path() == "/login"
    browser.go("/admin")
    assert browser.path().startswith("/login")
    browser.sign_in(demo.token)
    assert browser.path() == "/admin"
