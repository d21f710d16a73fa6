"""/jobs/{id} follows a job of every kind the job service runs, over HTTP: a consolidation
plan, a sprawl report (a kind the dashboard does not start: its typed result's fields), a
drill refused by the HA policy (its one-sentence error), a job still queued (the page
reloads itself); the requester who started a job follows it, nobody else without
``ops.read`` sees that it exists. Backups and restores are followed on this page in
test_backup_pages.py, unit operations in test_unit_pages.py and test_browser_units.py.

Real app and real job service on the demo fleet, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from lxml import html

from corral.api.routes.ha import DRILL, DrillJob
from corral.api.routes.plan import CONSOLIDATE, ConsolidateRequest
from corral.api.routes.sprawl import REPORT, ReportRequest
from corral.services.jobs import JobService, JobState
from tests.web.conftest import Demo
from tests.web.test_backup_pages import finished
from tests.web.test_request_pages import csrf, departments, sign_in, user

PLAN_JOB = re.compile(r"^/plan/jobs/([0-9a-f]{32})$")


def jobs(db_demo: Demo) -> JobService:
    found: JobService = db_demo.app.state.jobs
    return found


def facts(page: str) -> dict[str, str]:
    doc = html.fromstring(page)
    return {
        dt.text_content().strip(): dd.text_content().strip()
        for dt, dd in zip(doc.xpath("//dl/div/dt"), doc.xpath("//dl/div/dd"), strict=True)
    }


def test_a_consolidation_is_followed_on_the_job_page(client: TestClient, db_demo: Demo) -> None:
    sign_in(client, user(db_demo, "operator"))
    started = client.post(
        "/plan/consolidate",
        data={"csrf": csrf(client, "/plan"), "mode": "auto"},
        follow_redirects=False,
    )
    found = PLAN_JOB.match(started.headers["location"])
    assert started.status_code == 303 and found
    job = finished(db_demo, found.group(1), timeout_s=120)
    assert job.state is JobState.succeeded and job.result is not None
    page = client.get(f"/jobs/{job.id}")
    doc = html.fromstring(page.text)
    assert (
        page.status_code == 200 and doc.xpath("string(//*[@id='job-kind'])") == "plan.consolidate"
    )
    assert doc.xpath("string(//*[@id='job-state'])") == "succeeded"
    assert doc.xpath("//progress[@id='job-progress']/@value") == ["100"]
    summary = facts(page.text)
    assert summary["Migrations"] == str(job.result["migrations"])
    assert summary["Active hosts after"] == str(job.result["active_hosts_after"])
    assert not doc.xpath("//meta[@http-equiv='refresh']")  # done: no more reloads


def test_a_kind_the_dashboard_does_not_start_shows_its_result(
    client: TestClient, db_demo: Demo
) -> None:
    started = jobs(db_demo).submit(REPORT, ReportRequest(days=3), "someone-else")
    job = finished(db_demo, started.id, timeout_s=180)
    assert job.state is JobState.succeeded and job.result is not None
    sign_in(client, user(db_demo, "auditor"))
    doc = html.fromstring(client.get(f"/jobs/{job.id}").text)
    assert doc.xpath("string(//*[@id='job-kind'])") == "sprawl.report"
    summary = doc.xpath("//table[@id='job-result-summary']/tbody/tr")
    shown = {r.xpath("string(th)"): r.xpath("string(td)") for r in summary}
    assert shown == {k: str(v) for k, v in job.result["summary"].items()}
    findings = doc.xpath("//table[@id='job-result-findings']/tbody/tr")
    assert len(findings) == len(job.result["findings"]) > 0


def test_a_failed_job_shows_its_one_sentence(client: TestClient, db_demo: Demo) -> None:
    host = db_demo.inv.list_hosts()[0].name
    params = DrillJob(host=host, by="admin-test", roles="admin")
    job = finished(db_demo, jobs(db_demo).submit(DRILL, params, "admin-test").id)
    assert job.state is JobState.failed and job.error is not None
    sign_in(client, user(db_demo, "operator"))
    doc = html.fromstring(client.get(f"/jobs/{job.id}").text)
    assert doc.xpath("string(//*[@id='job-state'])") == "failed"
    assert doc.xpath("string(//*[@id='job-error'])") == job.error.detail
    assert doc.xpath("//a[text()='Back to the drills']/@href") == ["/ha/drills"]


def test_a_queued_job_reloads_and_only_its_submitter_or_a_reader_sees_it(
    client: TestClient, db_demo: Demo
) -> None:
    mine, _ = departments(db_demo)
    requester, other = user(db_demo, "requester", mine), user(db_demo, "requester", mine)
    params = ConsolidateRequest(live=True)
    queued = jobs(db_demo).submit(CONSOLIDATE, params, requester, start=False)
    sign_in(client, requester)
    page = client.get(f"/jobs/{queued.id}")
    doc = html.fromstring(page.text)
    assert page.status_code == 200 and doc.xpath("string(//*[@id='job-state'])") == "queued"
    assert doc.xpath("//meta[@http-equiv='refresh']/@content") == ["2"]
    sign_in(client, other)
    refused = client.get(f"/jobs/{queued.id}")
    assert refused.status_code == 404 and queued.id not in refused.text
    sign_in(client, user(db_demo, "auditor"))
    assert client.get(f"/jobs/{queued.id}").status_code == 200
    jobs(db_demo).cancel(queued.id)
