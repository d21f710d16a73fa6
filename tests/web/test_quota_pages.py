"""The quota page over HTTP: each department's usage against its quota as the quota service
answers it (approved, not yet provisioned requests included), each viewer only their
departments, and a quota changed by an administrator only, through the service, audited.

Real app (FastAPI's TestClient) on the demo fleet, on SQLite and PostgreSQL; the flow in
Chromium is in test_browser_plan.py.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from lxml import html as lhtml
from sqlalchemy import select

from corral.domain.requests import QuotaDimension, RequestState
from corral.services.quotas import Limits, QuotaService, QuotaView
from corral.store import models as m
from corral.web.routes_quota import _anchor
from tests.web.conftest import Demo
from tests.web.test_request_pages import (
    csrf,
    departments,
    pending,
    principal,
    service,
    sign_in,
    user,
)


def quotas(db_demo: Demo) -> QuotaService:
    svc: QuotaService = db_demo.app.state.quotas
    return svc


def shown(text: str, department: str) -> dict[str, list[str]]:
    """The figures table of one department: label -> [used, limit, left]."""
    doc = lhtml.document_fromstring(text)
    section = doc.get_element_by_id(f"quota-{_anchor(department)}")
    return {
        tr.xpath("./th")[0].text_content().split(" (")[0]: [
            td.text_content().strip() for td in tr.xpath("./td")
        ]
        for tr in section.xpath(".//table/tbody/tr")
    }


def figures(view: QuotaView) -> dict[str, list[str]]:
    """What the page must show for ``view``, from the service's own answer."""
    names = ("vCPUs", "Memory", "Storage", "VMs", "Monthly cost")
    out = {}
    for name, dim in zip(names, QuotaDimension, strict=True):
        used, limit = view.used.get(dim), view.limits.get(dim)
        out[name] = [
            f"{used:,.1f}",
            "—" if limit is None else f"{limit:,.1f}",
            "no limit" if limit is None else f"{max(0.0, limit - used):,.1f}",
        ]
    return out


def test_an_admin_sets_a_quota_and_the_write_is_audited_as_theirs(
    client: TestClient, db_demo: Demo
) -> None:
    mine, _ = departments(db_demo)
    admin = user(db_demo, "admin")
    sign_in(client, admin)
    form = {"department": mine, "vcpus": "64", "memory_mib": "131072", "storage_gb": "2000"}
    form |= {"vms": "40", "monthly_cost": "5000"}
    r = client.post("/quotas", data={"csrf": csrf(client, "/quotas"), **form})
    assert r.status_code == 200, r.text  # followed to the page
    view = quotas(db_demo).get(mine, principal(db_demo, admin))
    assert view.limits == Limits(64, 131072, 2000, 40, 5000) and view.updated_by == admin
    assert shown(r.text, mine) == figures(view)
    with db_demo.inv.db.session() as s:
        actors = s.execute(
            select(m.AuditEntry.actor, m.AuditEntry.origin)
            .where(m.AuditEntry.target == f"quota:{mine}")
            .order_by(m.AuditEntry.seq.desc())
        ).first()
    assert actors is not None and actors[0] == admin and actors[1].startswith("web ")
    cleared = client.post(
        "/quotas", data={"csrf": csrf(client, "/quotas"), "department": mine, "vcpus": "8"}
    )
    assert cleared.status_code == 200
    assert quotas(db_demo).get(mine, principal(db_demo, admin)).limits == Limits(vcpus=8)


def test_a_requester_sees_their_department_with_approved_requests_counted(
    client: TestClient, db_demo: Demo
) -> None:
    mine, other = departments(db_demo)
    admin = principal(db_demo, user(db_demo, "admin"))
    quotas(db_demo).set(mine, Limits(vcpus=500, vms=500), admin)
    quotas(db_demo).set(other, Limits(vcpus=7), admin)
    requester = user(db_demo, "requester", mine)
    sign_in(client, requester)
    before = quotas(db_demo).get(mine, principal(db_demo, requester))
    made = pending(db_demo, requester, mine)
    approved = service(db_demo).approve(
        made.id, principal(db_demo, user(db_demo, "approver", mine))
    )
    assert approved.state is RequestState.approved
    after = quotas(db_demo).get(mine, principal(db_demo, requester))
    assert after.used.vms == before.used.vms + 1 and after.used.vcpus == before.used.vcpus + 1
    page = client.get("/quotas")
    assert page.status_code == 200
    assert shown(page.text, mine) == figures(after)
    doc = lhtml.document_fromstring(page.text)
    assert doc.xpath(f"//section[@id='quota-{_anchor(other)}']") == []
    assert other not in page.text
    assert doc.xpath("//svg[@class='meter']//title") and 'action="/quotas"' not in page.text


def test_a_fleet_reader_sees_every_quota(client: TestClient, db_demo: Demo) -> None:
    mine, other = departments(db_demo)
    admin = principal(db_demo, user(db_demo, "admin"))
    quotas(db_demo).set(mine, Limits(vcpus=500), admin)
    quotas(db_demo).set(other, Limits(vcpus=7), admin)
    auditor = user(db_demo, "auditor")
    sign_in(client, auditor)
    page = client.get("/quotas").text
    views = quotas(db_demo).overview(principal(db_demo, auditor))
    for view in views:
        assert shown(page, view.department) == figures(view)
    doc = lhtml.document_fromstring(page)
    assert doc.xpath("//section[@class='quota']/@id") == [
        f"quota-{_anchor(v.department)}" for v in views
    ]
    running = {v.department for v in db_demo.inv.list_vms().items if v.department}
    assert running <= {v.department for v in views}  # a department without a quota too
    assert any(v.limits.unlimited for v in views)
    assert 'action="/quotas"' not in page


def test_only_an_admin_changes_a_quota_and_only_with_the_form_token(
    client: TestClient, db_demo: Demo
) -> None:
    mine, _ = departments(db_demo)
    admin = principal(db_demo, user(db_demo, "admin"))
    quotas(db_demo).set(mine, Limits(vcpus=50), admin)
    want = {"department": mine, "vcpus": "9999"}
    for role in ("requester", "approver", "operator", "auditor"):
        sign_in(client, user(db_demo, role, mine if role in ("requester", "approver") else None))
        r = client.post("/quotas", data={"csrf": csrf(client, "/quotas"), **want})
        assert r.status_code == 403, role
    sign_in(client, admin.user)
    assert client.post("/quotas", data={"csrf": "forged", **want}).status_code == 403
    token = csrf(client, "/quotas")
    bad = client.post("/quotas", data={"csrf": token, "department": mine, "vcpus": "-1"})
    assert bad.status_code == 422 and "vcpus limit" in bad.text.lower().replace("&#39;", "")
    nameless = client.post("/quotas", data={"csrf": token, "department": "", "vcpus": "1"})
    assert nameless.status_code == 422
    assert quotas(db_demo).get(mine, admin).limits == Limits(vcpus=50)
    client.cookies.clear()
    assert client.post("/quotas", data=want, follow_redirects=False).status_code == 303
