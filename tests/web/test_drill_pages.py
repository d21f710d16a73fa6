"""The drill pages of the dashboard: /ha/drills lists the drill runs (paged, newest first)
and /ha/drills/ID shows a run's report, to whoever may see /ha (fleet-wide analysts:
operators, auditors, admins), refused on the server to everyone else; names stay text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from lxml import html as lhtml

from corral.services.ha_drill import report_from_events
from corral.services.ha_live_policy import DrillPolicy
from corral.store import ha_drills
from corral.web.pages import CSP
from tests.web.conftest import Demo
from tests.web.test_request_pages import departments, sign_in, user

HOSTILE = "<script>alert(1)</script>"
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def drill_run(db_demo: Demo, vm: str, at: datetime) -> int:
    """A finished drill of host h1 whose VM ``vm`` came back on h2 after 41.5 s."""
    killed = at.timestamp()
    events = [
        {"id": 1, "t": killed + 30.5, "kind": "host_failed", "host": "h1", "vm": None,
         "detail": "7 failed checks"},
        {"id": 2, "t": killed + 35.0, "kind": "host_fenced", "host": "h1", "vm": None,
         "detail": "power: off"},
        {"id": 3, "t": killed + 41.5, "kind": "vm_recovered", "host": "h2", "vm": vm,
         "detail": "started"},
        {"id": 4, "t": killed + 41.6, "kind": "host_recovered", "host": "h1", "vm": None,
         "detail": ""},
    ]  # fmt: skip
    report = report_from_events("h1", killed, [vm], {vm: "h2"}, events, DrillPolicy())
    run_id = ha_drills.begin(db_demo.inv.db, "default", "h1", False, at)
    ha_drills.end(db_demo.inv.db, run_id, "met", at + timedelta(seconds=42), report.to_dict())
    return run_id


def test_the_drill_list_is_paged_and_links_each_report(client: TestClient, db_demo: Demo) -> None:
    ids = [drill_run(db_demo, f"vm-{i}", T0 + timedelta(hours=i)) for i in range(27)]
    sign_in(client, user(db_demo, "auditor"))
    first = client.get("/ha/drills")
    assert first.status_code == 200 and first.headers["content-security-policy"] == CSP
    doc = lhtml.document_fromstring(first.text)
    links = doc.xpath("//table[@id='drills']/tbody/tr/td[1]/a/@href")
    assert links == [f"/ha/drills/{i}" for i in reversed(ids)][:25]
    assert doc.xpath("//a[@rel='next']/@href") == ["/ha/drills?page=2"]
    second = lhtml.document_fromstring(client.get("/ha/drills?page=2").text)
    assert second.xpath("//table[@id='drills']/tbody/tr/td[1]/a/@href") == [
        f"/ha/drills/{i}" for i in reversed(ids[:2])
    ]
    report = lhtml.document_fromstring(client.get(links[0]).text)
    vms = [[td.text_content() for td in tr.xpath("td")]
           for tr in report.xpath("//table[@id='drill-vms']/tbody/tr")]  # fmt: skip
    assert vms == [["vm-26", "h2", "h2", "41.5", "60.0", "met", ""]]
    assert report.xpath("string(//*[@id='detection'])") == "30.5"
    assert report.xpath("string(//*[@id='fence'])") == "35.0"
    assert len(report.xpath("//table[@id='drill-timeline']/tbody/tr")) == 4
    assert client.get("/ha/drills/999999").status_code == 404
    assert client.get("/ha/drills/abc").status_code == 404


def test_a_hostile_vm_name_is_shown_as_text(client: TestClient, db_demo: Demo) -> None:
    run_id = drill_run(db_demo, HOSTILE, T0)
    sign_in(client, user(db_demo, "operator"))
    page = client.get(f"/ha/drills/{run_id}")
    assert page.status_code == 200
    assert HOSTILE not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    doc = lhtml.document_fromstring(page.text)
    assert doc.xpath("string(//table[@id='drill-vms']/tbody/tr/td[1])") == HOSTILE
    assert all(s.get("src", "").startswith("/static/") for s in doc.xpath("//script"))


@pytest.mark.parametrize("path", ["/ha/drills", "/ha/drills/{id}"])
def test_the_drill_pages_refuse_who_may_not_see_ha(
    client: TestClient, db_demo: Demo, path: str
) -> None:
    url = path.format(id=drill_run(db_demo, "vm-secret-7", T0))
    client.cookies.clear()
    anonymous = client.get(url, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    mine, _ = departments(db_demo)
    for role in ("requester", "approver"):
        sign_in(client, user(db_demo, role, mine))
        refused = client.get(url)
        assert refused.status_code == 403 and "vm-secret-7" not in refused.text
    for role in ("operator", "auditor", "admin"):
        sign_in(client, user(db_demo, role))
        assert client.get(url).status_code == 200
