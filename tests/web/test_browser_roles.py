"""Each role's flow in Debian's Chromium: sign in with a password, land on the page of what
the role decides, do the action, and find it in the database afterwards.

A requester asks for a VM and withdraws another; an approver denies one request with a
reason and approves another; an operator acknowledges and silences an alert and reads the HA
and backup pages. Every page gets axe-core (no serious or critical violation) and a
screenshot, as in test_browser.py.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from corral.domain.access import Principal
from corral.domain.requests import RequestState, Size
from corral.engines.alerting import AlertState, Snapshot
from corral.services import alerts_cli
from corral.services.requests import RequestService, RequestSpec, RequestView
from corral.services.users import UserService
from corral.store import models as m
from tests.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.requires import Resource, requires
from tests.web.conftest import Demo
from tests.web.test_browser import SHOTS, Browser

pytestmark = pytest.mark.requires("chromium")
PASSWORD = "a long pass phrase 42"


@pytest.fixture(scope="module")
def browser(served: str) -> Iterator[Browser]:
    requires(Resource.chromium)
    requires(Resource.playwright)
    from playwright.sync_api import sync_playwright

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    shots = SHOTS / "roles" / (worker or "")
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


def user(demo: Demo, role: str, department: str | None = None) -> str:
    name = f"{role}-{secrets.token_hex(3)}"
    UserService(demo.inv.db).add(
        name, roles=[role], departments=[department] if department else [], password=PASSWORD
    )
    return name


def sign_in(browser: Browser, name: str) -> str:
    """Through the password form, as a person would; returns the page it lands on."""
    browser.page.context.clear_cookies()
    browser.go("/login")
    browser.page.fill("#user", name)
    browser.page.fill("#password", PASSWORD)
    browser.page.click("form.card button[type=submit]")
    return browser.path()


def department(demo: Demo) -> str:
    return sorted({v.department for v in demo.inv.list_vms().items if v.department})[0]


def requests(demo: Demo) -> RequestService:
    svc: RequestService = demo.app.state.requests
    return svc


def principal(demo: Demo, name: str) -> Principal:
    return UserService(demo.inv.db).principal(name)


def pending(demo: Demo, requester: str, dept: str, purpose: str) -> RequestView:
    spec = RequestSpec("debian-12", 1, Size(1, 1024, 10), requester, dept, purpose, "dev", 30)
    return requests(demo).create(spec, principal(demo, requester), submit=True)


def test_a_requester_asks_for_a_vm_and_withdraws_another(browser: Browser, demo: Demo) -> None:
    dept = department(demo)
    name = user(demo, "requester", dept)
    older = pending(demo, name, dept, "an old experiment")
    assert sign_in(browser, name) == "/requests"
    page = browser.page
    page.fill("#template", "debian-12")
    page.fill("#vcpus", "4")
    page.fill("#memory_mib", "8192")
    page.fill("#disk_gb", "40")
    page.select_option("#environment", "test")
    page.fill("#lease_days", "60")
    page.fill("#purpose", "a build agent for the mobile team")
    page.click("button:has-text('Send the request')")
    mine = requests(demo).listing(principal(demo, name), mine=True)
    made = next(r for r in mine if r.spec.purpose == "a build agent for the mobile team")
    assert made.state is RequestState.pending and made.spec.department == dept
    assert made.spec.size == Size(4, 8192, 40.0) and made.spec.lease_days == 60
    assert browser.path() == "/requests"
    assert page.locator(f"#request-{made.id}").is_visible()
    browser.check("requester")
    page.click(f"button[aria-label='Withdraw request {older.id}']")
    assert requests(demo).get(older.id, principal(demo, name)).state is RequestState.cancelled
    assert requests(demo).get(made.id, principal(demo, name)).state is RequestState.pending
    assert "cancelled" in page.locator(f"#request-{older.id} h3").inner_text()


def test_an_approver_denies_one_with_a_reason_and_approves_another(
    browser: Browser, demo: Demo
) -> None:
    dept = department(demo)
    asker = user(demo, "requester", dept)
    keep, refuse = pending(demo, asker, dept, "keep me"), pending(demo, asker, dept, "refuse me")
    approver = user(demo, "approver", dept)
    assert sign_in(browser, approver) == "/approvals"
    page = browser.page
    card = page.locator(f"#request-{refuse.id}")
    assert f"{refuse.monthly_cost:,.2f}" in card.inner_text()
    assert "auto_approve.off" in card.inner_text()  # the rule that sent it here
    browser.check("approver")
    card.locator("input[name=note][required]").fill("use the shared build pool")
    card.locator("button:has-text('Deny')").click()
    denied = requests(demo).get(refuse.id, principal(demo, asker))
    assert denied.state is RequestState.denied
    assert (denied.decisions[-1].actor, denied.decisions[-1].note) == (
        approver,
        "use the shared build pool",
    )
    page.locator(f"#request-{keep.id} button:has-text('Approve')").click()
    approved = requests(demo).get(keep.id, principal(demo, asker))
    assert approved.state is RequestState.approved and approved.approvers == (approver,)
    assert page.locator(f"#request-{keep.id}").count() == 0  # the queue moved on


def test_an_operator_acknowledges_and_silences_an_alert(browser: Browser, demo: Demo) -> None:
    svc = alerts_cli.service(demo.app.state.settings, demo.inv.db)
    now = time.time()
    hot = {"web-a": 99.0, "web-b": 98.0}
    for at in (now - 900, now):  # above the threshold for longer than the rule's 10 minutes
        svc.evaluate(
            Snapshot(at, latest={("vm", "cpu_pct"): hot}, hosts=dict.fromkeys(hot, "kvm-1"))
        )
    firing = {dict(a.labels)["entity"]: a for a in svc.alerts(AlertState.firing)}
    operator = user(demo, "operator")
    assert sign_in(browser, operator) == "/admin"
    browser.go("/alerts")
    browser.check("alerts")
    page = browser.page
    a, b = firing["web-a"], firing["web-b"]
    page.locator(f"#alert-{a.fingerprint} button:has-text('Acknowledge')").click()
    with demo.inv.db.session() as s:
        row = s.get(m.AlertRow, a.fingerprint)
        assert row is not None and (row.state, row.acked_by) == ("acknowledged", operator)
    row_b = page.locator(f"#alert-{b.fingerprint}")
    row_b.locator("select").select_option("1d")
    row_b.locator("input[name=comment]").fill("load test on web-b")
    row_b.locator("button:has-text('Silence')").click()
    with demo.inv.db.session() as s:
        silence = s.scalars(
            select(m.AlertSilenceRow).where(m.AlertSilenceRow.created_by == operator)
        ).one()
        assert silence.matchers == dict(b.labels) and silence.comment == "load test on web-b"
    assert "load test on web-b" in page.locator("main").inner_text()


@pytest.mark.parametrize(("name", "path"), [("ha", "/ha"), ("backups", "/backups")])
def test_the_ha_and_backup_pages_are_accessible(
    browser: Browser, demo: Demo, name: str, path: str
) -> None:
    sign_in(browser, user(demo, "operator"))
    browser.go(path)
    assert browser.page.locator("h1").count() == 1
    assert browser.page.locator("table").count() >= 1
    browser.check(name)


def test_an_auditor_lands_on_the_audit_log_and_filters_it(browser: Browser, demo: Demo) -> None:
    auditor = user(demo, "auditor")
    assert sign_in(browser, auditor) == "/audit"
    browser.check("audit")  # axe: no serious or critical violation; a screenshot
    page = browser.page
    page.locator("#user").fill(auditor)
    page.locator("form.filters button").click()
    assert page.url.endswith(f"/audit?user={auditor}&target=")
    assert page.locator("#audit tbody tr").first.inner_text() == "No entries match."
