"""Backups and restores from the browser, in Debian's Chromium: an operator backs a VM up now
from the backup page and restores a point as a new VM, following each job's page until it is
done; an in-place restore cannot be sent without ticking its confirmation. axe-core (no
serious or critical violation) and a screenshot on every page, as in test_browser.py.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from corral.inventory.filters import VMFilter
from corral.inventory.views import as_row
from corral.store import models as m
from tests.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.requires import Resource, requires
from tests.web.conftest import Demo
from tests.web.test_backup_pages import point_of
from tests.web.test_browser import SHOTS, Browser
from tests.web.test_browser_roles import sign_in, user

pytestmark = pytest.mark.requires("chromium")
JOB_PATH = re.compile(r"^/jobs/([0-9a-f]{32})$")


@pytest.fixture(scope="module")
def browser(served: str) -> Iterator[Browser]:
    requires(Resource.chromium)
    requires(Resource.playwright)
    from playwright.sync_api import sync_playwright

    shots = SHOTS / "backups" / (os.environ.get("PYTEST_XDIST_WORKER") or "")
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


def follow_job(browser: Browser) -> str:
    """On a job's page: wait (it reloads itself) until the job is done; its id."""
    found = JOB_PATH.match(browser.path())
    assert found, browser.path()
    state = browser.page.locator("#job-state")
    done = re.compile(r"^(succeeded|failed|cancelled)$")
    browser.page.wait_for_function(
        "re => new RegExp(re).test(document.querySelector('#job-state').innerText.trim())",
        arg=done.pattern,
        timeout=60_000,
    )
    assert done.match(state.inner_text().strip())
    return found.group(1)


def test_an_operator_backs_up_and_restores_from_the_browser(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    vm = as_row(demo.inv.list_vms(VMFilter(state="running"), limit=1).items[0])
    point = point_of(demo, vm, tmp_path)
    operator = user(demo, "operator")
    sign_in(browser, operator)
    page = browser.page

    browser.go("/backups")
    browser.check("backups-with-actions")
    page.fill("#backup-vm", vm["name"])
    page.click("button:has-text('Back up now')")
    job_id = follow_job(browser)
    browser.check("backup-job")
    with demo.inv.db.session() as s:
        job = s.get(m.Job, job_id)
        assert job is not None and (job.kind, job.submitted_by) == ("backup.run", operator)
        assert job.params["vm"] == vm["uuid"]

    browser.go(f"/vms/{vm['uuid']}")
    assert page.locator(f"#main a[href='/backups/points/{point.id}']").count() == 1
    browser.check("vm-with-backups")

    browser.go("/backups")
    page.click(f"a[href='/backups/points/{point.id}']")
    assert browser.path() == f"/backups/points/{point.id}"
    browser.check("backup-point")
    page.click("button:has-text('Restore in place')")  # the box is not ticked: not sent
    assert browser.path() == f"/backups/points/{point.id}"
    name = f"web-{uuid.uuid4().hex[:6]}"
    page.fill("#as_name", name)
    page.click("button:has-text('Restore as a new VM')")
    job_id = follow_job(browser)
    assert page.locator("#job-state").inner_text().strip() == "succeeded"
    assert name in page.locator("main").inner_text()
    browser.check("restore-job")
    with demo.inv.db.session() as s:
        restored = s.scalars(
            select(m.BackupRestoreRow).where(m.BackupRestoreRow.point_id == point.id)
        ).all()
        assert [(r.mode, r.vm_name) for r in restored] == [("new", name)]
        job = s.get(m.Job, job_id)
        assert job is not None and (job.kind, job.submitted_by) == ("backup.restore", operator)
