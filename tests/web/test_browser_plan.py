"""The planning, quota, blueprint, unit and restore-target flows in Debian's Chromium.

An operator ranks the hosts for a VM size, asks what if a host left, and follows a
consolidation job to its migrations; an administrator changes a department's quota and a
requester of that department sees only theirs; an operator restores a point onto the host
they chose; a requester requests a blueprint from the catalog, then stops and tears down a
deployed unit (teardown is not sent before its box is ticked), and redeploys a stopped unit,
following the job to done on the unit job page and the page of every job kind. axe-core
(no serious or critical violation) and a screenshot on every page, saved per page in
var/test-artifacts/dashboard-screenshots/<page>/.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from corral.inventory.filters import VMFilter
from corral.inventory.views import as_row
from corral.services import planning
from corral.services.audit import AuditLog
from corral.services.fleet import live_fleet
from corral.services.quotas import Limits, QuotaService
from corral.services.users import UserService
from tests.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.requires import Resource, requires
from tests.web.conftest import Demo, free_port
from tests.web.test_backup_pages import point_of
from tests.web.test_browser import SHOTS, Browser
from tests.web.test_browser_roles import sign_in, user
from tests.web.units_app import UnitsApp, build_units_app

pytestmark = pytest.mark.requires("chromium")
PAGES = ("plan", "quotas", "backups-target", "blueprints", "units")
DONE = re.compile(r"^(succeeded|failed|cancelled)$")


def shots_for(page: str) -> Path:
    worker = os.environ.get("PYTEST_XDIST_WORKER") or ""
    return SHOTS / page / worker


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    requires(Resource.chromium)
    requires(Resource.playwright)
    from playwright.sync_api import sync_playwright

    for page in PAGES:
        shutil.rmtree(shots_for(page), ignore_errors=True)
        shots_for(page).mkdir(parents=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_FLAGS))
        yield browser
        browser.close()


@contextmanager
def open_browser(chromium: Any, base: str, page: str) -> Iterator[Browser]:
    """A fresh context (its own cookies) that reaches only ``base``."""
    off_machine: list[str] = []
    context = chromium.new_context(viewport={"width": 1366, "height": 800})

    def only_here(route: Any) -> None:
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:
            off_machine.append(route.request.url)
            route.abort()

    context.route("**/*", only_here)
    yield Browser(context.new_page(), base, shots_for(page))
    context.close()
    assert not off_machine, off_machine


@pytest.fixture
def on_demo(chromium: Any, served: str, request: pytest.FixtureRequest) -> Iterator[Browser]:
    with open_browser(chromium, served, request.param) as browser:
        yield browser


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UnitsApp, str]]:
    """The app that deploys blueprints, under uvicorn on a free port."""
    built = build_units_app(tmp_path_factory.mktemp("units-browser"))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(built.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield built, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
    built.app.state.jobs.shutdown(wait=True)


def wait_done(browser: Browser) -> str:
    browser.page.wait_for_function(
        "re => new RegExp(re).test(document.querySelector('#job-state').innerText.trim())",
        arg=DONE.pattern,
        timeout=90_000,
    )
    return browser.page.locator("#job-state").inner_text().strip()


@pytest.mark.parametrize("on_demo", ["plan"], indirect=True)
def test_an_operator_ranks_hosts_asks_what_if_and_plans_a_consolidation(
    on_demo: Browser, demo: Demo
) -> None:
    browser, page = on_demo, on_demo.page
    sign_in(browser, user(demo, "operator"))
    page.click("nav a:has-text('Planning')")
    assert browser.path() == "/plan"
    browser.check("plan")
    page.fill("#vcpus", "2")
    page.fill("#memory_mib", "4096")
    page.click("button:has-text('Rank the hosts')")
    assert "vcpus=2" in browser.path() and "memory_mib=4096" in browser.path()
    fleet = live_fleet(demo.inv).fleet
    want = planning.rank_hosts(fleet, planning.NewVM("new-vm", 2, 4096))
    hosts = page.locator("#ranking tbody tr td:nth-child(2)").all_inner_texts()
    assert hosts == [r.host for r in want]
    browser.check("plan-ranking")
    page.select_option("#remove", fleet.hosts[0].name)
    page.fill("#add", "4")
    page.click("button:has-text('See the fleet after')")
    result = planning.whatif(
        fleet, [planning.RemoveHost(fleet.hosts[0].name), planning.AddVMs(4, 2, 4096)]
    )
    verdict = page.locator("#whatif-verdict").inner_text()
    assert f"tolerate {result.after.ha_tolerated_host_failures} host failures" in verdict
    browser.check("plan-whatif")
    page.select_option("#mode", "heuristic")
    page.click("button:has-text('Plan a consolidation')")
    assert browser.path().startswith("/plan/jobs/")
    assert wait_done(browser) == "succeeded"
    plan = planning.consolidate(fleet, planning.ConsolidationMode.heuristic)
    rows = page.locator("#migrations tbody tr").count()
    assert rows == max(1, len(plan.schedule.steps))
    browser.check("plan-consolidation")


@pytest.mark.parametrize("on_demo", ["quotas"], indirect=True)
def test_an_admin_changes_a_quota_and_a_requester_sees_only_theirs(
    on_demo: Browser, demo: Demo
) -> None:
    browser, page = on_demo, on_demo.page
    found = sorted({v.department for v in demo.inv.list_vms().items if v.department})
    mine, other = found[0], found[1]
    quotas: QuotaService = demo.app.state.quotas
    admin = user(demo, "admin")
    quotas.set(other, Limits(vcpus=4), UserService(demo.inv.db).principal(admin))
    sign_in(browser, admin)
    browser.go("/quotas")
    section = page.locator(f"section:has(h2:text-is('{mine}'))")
    section.locator("summary").click()
    section.locator("input[name=vcpus]").fill("300")
    section.locator("input[name=vms]").fill("120")
    section.locator("button:has-text('Save the quota')").click()
    view = quotas.get(mine, UserService(demo.inv.db).principal(admin))
    assert (view.limits.vcpus, view.limits.vms) == (300, 120)
    assert page.locator(f"section:has(h2:text-is('{mine}')) svg.meter").count() == 1
    browser.check("quotas-admin")
    sign_in(browser, user(demo, "requester", mine))
    browser.go("/quotas")
    headings = page.locator("main h2").all_inner_texts()
    assert headings == [mine], headings
    browser.check("quotas-requester")


@pytest.mark.parametrize("on_demo", ["backups-target"], indirect=True)
def test_an_operator_restores_a_point_onto_the_host_they_choose(
    on_demo: Browser, demo: Demo, tmp_path: Path
) -> None:
    browser, page = on_demo, on_demo.page
    vm = as_row(demo.inv.list_vms(VMFilter(state="running"), limit=1).items[0])
    point = point_of(demo, vm, tmp_path)
    sign_in(browser, user(demo, "operator"))
    browser.go(f"/backups/points/{point.id}")
    options = page.locator("#target-host option").evaluate_all("os => os.map(o => o.value)")
    others = [h for h in options if h != point.host]
    assert options[0] == point.host and others
    browser.check("backup-point-hosts")
    name = f"web-{uuid.uuid4().hex[:6]}"
    page.fill("#as_name", name)
    page.select_option("#target-host", others[0])
    page.click("button:has-text('Restore as a new VM')")
    assert wait_done(browser) == "succeeded"
    assert others[0] in page.locator("main").inner_text()
    browser.check("restore-job-on-host")


def test_a_requester_requests_a_blueprint_and_runs_a_unit(
    chromium: Any, lab: tuple[UnitsApp, str]
) -> None:
    app, base = lab
    with open_browser(chromium, base, "blueprints") as blueprints:
        request_the_lab(blueprints, app)
    unit_id = app.deploy("browser unit")
    with open_browser(chromium, base, "units") as units:
        run_the_unit(units, app, unit_id)


def test_a_requester_redeploys_a_stopped_unit_and_follows_the_job(
    chromium: Any, lab: tuple[UnitsApp, str]
) -> None:
    app, base = lab
    unit_id = app.deploy("browser redeploy")
    alice = app.principal("alice")
    assert app.units.stop(unit_id, alice).state == "stopped"
    with open_browser(chromium, base, "units") as units:
        page = units.page
        sign_in(units, "alice")
        units.go(f"/units/{unit_id}")
        page.click("button:has-text('Redeploy the unit')")
        job_path = units.path()
        assert re.fullmatch(r"/units/jobs/[0-9a-f]{32}", job_path), job_path
        assert wait_done(units) == "succeeded"
        assert page.locator("#unit-outcome").inner_text() == f"Unit {unit_id} is now running."
        units.check("unit-redeploy-job")
        job_id = job_path.rsplit("/", 1)[1]
        units.go(f"/jobs/{job_id}")  # the page of every job kind shows the same outcome
        assert page.locator("#job-kind").inner_text() == "unit.operate"
        assert page.locator("#job-state").inner_text() == "succeeded"
        assert page.locator("#unit-outcome").inner_text() == f"Unit {unit_id} is now running."
        units.check("unit-redeploy-job-generic")
    assert app.units.get(unit_id, alice).state == "running"
    job = app.app.state.jobs.get(job_id)
    assert job.submitted_by == "alice" and job.result == {**job.result, "state": "running"}
    entries = AuditLog(app.app.state.inventory.db).list(target=f"unit:{unit_id}")
    assert [(e.actor, e.after.get("op")) for e in entries if e.after and e.after.get("op")][-1] == (
        "alice",
        "redeploy",
    )


def request_the_lab(blueprints: Browser, app: UnitsApp) -> None:
    sign_in(blueprints, "alice")
    blueprints.page.click("nav a:has-text('Blueprints')")
    assert blueprints.page.locator("#blueprint-lab tbody tr").count() == 2
    blueprints.check("blueprints")
    blueprints.page.click("a:has-text('Request lab')")
    assert blueprints.page.locator("#requested-blueprint").count() == 1
    blueprints.check("request-a-blueprint")
    blueprints.page.fill("#purpose", "browser lab")
    blueprints.page.click("button:has-text('Send the request')")
    made = [v for v in app.requests.listing(app.principal("alice"), mine=True)
            if v.spec.purpose == "browser lab"]  # fmt: skip
    assert len(made) == 1 and made[0].spec.blueprint == "lab"


def run_the_unit(units: Browser, app: UnitsApp, unit_id: int) -> None:
    page = units.page
    sign_in(units, "alice")
    page.click("nav a:has-text('Units')")
    units.check("units")
    page.click(f"a[href='/units/{unit_id}']")
    assert page.locator("#unit-vms tbody tr").count() == 3
    units.check("unit")
    page.click("button:has-text('Stop the unit')")
    assert wait_done(units) == "succeeded"
    assert "stopped" in page.locator("#unit-outcome").inner_text()
    units.check("unit-stop-job")
    units.go(f"/units/{unit_id}")
    page.click("button:has-text('Tear the unit down')")  # the box is not ticked: not sent
    assert units.path() == f"/units/{unit_id}"
    page.check("input[name=confirm]")
    page.click("button:has-text('Tear the unit down')")
    assert wait_done(units) == "succeeded"
    assert app.units.get(unit_id, app.principal("alice")).state == "torn-down"
    units.check("unit-teardown-job")
