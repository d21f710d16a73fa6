"""The blueprint catalog and the unit pages over HTTP: the catalog as the blueprint service
prices it (and a blueprint requested from it), each viewer's departments' units only, and
stop and teardown as the REST API's jobs with every refusal decided on the server.

Real app (FastAPI's TestClient) with a libvirt test-driver host that deploys the units, on
SQLite and PostgreSQL; the flow in Chromium is in test_browser_plan.py.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from lxml import html as lhtml

from corral.services.blueprint_catalog import catalog
from corral.services.blueprints import BlueprintService
from corral.services.jobs import FINISHED, Job, JobService
from corral.services.templates import TemplateService
from corral.web.pages import CSP
from tests.provision.conftest import domain_names
from tests.requires import Resource, requires
from tests.web.conftest import CSRF
from tests.web.units_app import PASSWORD, UnitsApp, build_units_app

UNIT_JOB = re.compile(r"^/units/jobs/([0-9a-f]{32})$")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UnitsApp]:
    url = None
    if request.param == "postgresql":
        requires(Resource.postgresql)
        url = os.environ["CORRAL_TEST_PG_URL"]
    built = build_units_app(tmp_path_factory.mktemp("units"), url)
    yield built
    built.app.state.jobs.shutdown(wait=True)
    built.inv.db.dispose()


@pytest.fixture
def client(lab: UnitsApp) -> Iterator[TestClient]:
    with TestClient(lab.app, base_url="http://testserver") as c:
        yield c


def sign_in(client: TestClient, name: str) -> None:
    client.cookies.clear()
    token = CSRF.search(client.get("/login").text)
    assert token
    r = client.post(
        "/login",
        data={"csrf": token.group(1), "user": name, "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def csrf(client: TestClient, path: str = "/units") -> str:
    found = CSRF.search(client.get(path).text)
    assert found
    return found.group(1)


def finished(lab: UnitsApp, job_id: str) -> Job:
    jobs: JobService = lab.app.state.jobs
    for _ in range(1200):
        job = jobs.get(job_id)
        if job.state in FINISHED:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def cells(text: str, table: str) -> list[list[str]]:
    doc = lhtml.document_fromstring(text)
    return [
        [c.text_content().strip() for c in tr.xpath("./td|./th")]
        for tr in doc.xpath(f"//table[@id='{table}']/tbody/tr")
    ]


def test_the_catalog_is_the_blueprint_services_priced(client: TestClient, lab: UnitsApp) -> None:
    sign_in(client, "bob")
    r = client.get("/blueprints")
    assert r.status_code == 200 and r.headers["content-security-policy"] == CSP
    db = lab.inv.db
    (entry,) = catalog(BlueprintService(db, TemplateService(db)), lab.requests.prices)
    section = lhtml.document_fromstring(r.text).get_element_by_id("blueprint-lab")
    rows = [[c.text_content().strip() for c in tr] for tr in section.xpath(".//tbody/tr")]
    assert [(row[0], row[2], row[3], row[4]) for row in rows] == [
        (t.part.tier, str(t.part.count), str(t.part.size.vcpus), f"{t.part.size.memory_mib:,}")
        for t in entry.tiers
    ]
    assert [row[-1] for row in rows] == [f"{t.monthly_cost:,.2f}" for t in entry.tiers]
    caption = f"lab: {entry.vms} VMs, {entry.monthly_cost:,.2f} {entry.currency} a month"
    assert caption in section.text_content() and entry.vms == 3
    assert 'href="/requests?blueprint=lab#new"' in r.text


def test_a_blueprint_is_requested_from_the_catalog(client: TestClient, lab: UnitsApp) -> None:
    sign_in(client, "bob")
    form = client.get("/requests", params={"blueprint": "lab"}).text
    assert 'name="blueprint" value="lab"' in form and 'id="template"' not in form
    data = {"csrf": csrf(client, "/requests"), "blueprint": "lab", "department": "blue"}
    data |= {"environment": "dev", "lease_days": "7", "purpose": "from the catalog"}
    r = client.post("/requests", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    mine = [v for v in lab.requests.listing(lab.principal("bob"), mine=True)
            if v.spec.purpose == "from the catalog"]  # fmt: skip
    assert len(mine) == 1 and mine[0].spec.blueprint == "lab"
    assert [p.tier for p in mine[0].parts] == ["db", "web"]
    assert sum(p.count for p in mine[0].parts) == 3


def test_each_viewer_sees_their_departments_units(client: TestClient, lab: UnitsApp) -> None:
    unit_id = lab.deploy("scoping")
    want = lab.units.get(unit_id, lab.principal("alice"))
    sign_in(client, "alice")
    listed = cells(client.get("/units").text, "units")
    assert [f"Unit {unit_id}", "lab", "red", want.state] in [row[:4] for row in listed]
    page = client.get(f"/units/{unit_id}")
    assert page.status_code == 200
    assert [tuple(row) for row in cells(page.text, "unit-vms")] == [
        (v.name, v.tier, v.host, v.template) for v in want.vms
    ]
    assert want.network in page.text and len(want.vms) == 3
    assert page.text.count('action="/units/') == 3  # stop, redeploy, teardown
    sign_in(client, "bob")
    assert f"Unit {unit_id}<" not in client.get("/units").text
    assert client.get(f"/units/{unit_id}").status_code == 404
    sign_in(client, "audrey")  # reads every department's units, runs none
    page = client.get(f"/units/{unit_id}")
    assert page.status_code == 200 and 'action="/units/' not in page.text
    assert client.get("/units/abc").status_code == 404


def test_a_unit_is_stopped_and_torn_down_from_its_page(client: TestClient, lab: UnitsApp) -> None:
    unit_id = lab.deploy("operate")
    names = {v.name for v in lab.units.get(unit_id, lab.principal("alice")).vms}
    assert names <= domain_names(lab.node)
    sign_in(client, "alice")
    token = csrf(client, f"/units/{unit_id}")
    r = client.post(f"/units/{unit_id}/stop", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    found = UNIT_JOB.match(r.headers["location"])
    assert found, r.headers["location"]
    job = finished(lab, found.group(1))
    assert (job.kind, job.submitted_by, job.state.value) == ("unit.operate", "alice", "succeeded")
    assert lab.units.get(unit_id, lab.principal("alice")).state == "stopped"
    shown = client.get(r.headers["location"]).text
    assert "stopped" in shown and 'http-equiv="refresh"' not in shown
    unconfirmed = client.post(f"/units/{unit_id}/teardown", data={"csrf": token})
    assert unconfirmed.status_code == 422 and "tick the box" in unconfirmed.text
    assert lab.units.get(unit_id, lab.principal("alice")).state == "stopped"
    r = client.post(
        f"/units/{unit_id}/teardown",
        data={"csrf": token, "confirm": "yes"},
        follow_redirects=False,
    )
    job = finished(lab, UNIT_JOB.match(r.headers["location"]).group(1))  # type: ignore[union-attr]
    assert job.state.value == "succeeded", job.error
    assert lab.units.get(unit_id, lab.principal("alice")).state == "torn-down"
    assert not names & domain_names(lab.node)
    sign_in(client, "bob")  # another department's job is not shown
    assert client.get(r.headers["location"]).status_code == 404


def test_unit_operations_are_refused_on_the_server(client: TestClient, lab: UnitsApp) -> None:
    unit_id = lab.deploy("refusals")
    jobs: JobService = lab.app.state.jobs
    before = jobs.list(limit=1000).total
    sign_in(client, "alice")
    assert client.post(f"/units/{unit_id}/stop", data={"csrf": "forged"}).status_code == 403
    token = csrf(client)
    assert client.post(f"/units/{unit_id}/explode", data={"csrf": token}).status_code == 404
    assert client.post("/units/99999/stop", data={"csrf": token}).status_code == 404
    sign_in(client, "bob")  # requester of another department: not found
    assert client.post(f"/units/{unit_id}/stop", data={"csrf": csrf(client)}).status_code == 404
    sign_in(client, "audrey")  # auditor: reads, may not run
    assert client.post(f"/units/{unit_id}/stop", data={"csrf": csrf(client)}).status_code == 403
    assert jobs.list(limit=1000).total == before
    assert lab.units.get(unit_id, lab.principal("alice")).state == "running"
    client.cookies.clear()
    assert client.get("/units", follow_redirects=False).status_code == 303
