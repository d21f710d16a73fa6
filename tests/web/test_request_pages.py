"""The request, approval, HA, backup and alert pages over HTTP: what each role may do, and
that everything a role may not do is refused on the server with nothing changed.

Real app (FastAPI's TestClient) on the demo fleet, on SQLite and on PostgreSQL; the flows in
a real browser are in test_browser_roles.py.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from lxml import html as lhtml
from sqlalchemy import func, select

from corral.domain.access import Principal, Role
from corral.domain.backup import Manifest
from corral.domain.requests import RequestState, Size
from corral.engines.alerting import AlertState, Snapshot
from corral.engines.ha_manager.events import Event
from corral.engines.ha_manager.manager import initial_state
from corral.engines.ha_manager.state import HostRecord, HostState
from corral.inventory.filters import VMFilter
from corral.services import alerts_cli
from corral.services.audit import Actor, AuditLog, acting_as
from corral.services.backup_exec import catalog_row
from corral.services.fleet import live_fleet
from corral.services.ha_live import DEFAULT_NAME
from corral.services.quotas import Limits
from corral.services.requests import RequestService, RequestSpec, RequestView
from corral.services.users import UserService
from corral.store import models as m
from corral.store.ha_state import save_round
from corral.web.pages import CSP
from tests.web.conftest import CSRF, Demo

PASSWORD = "a long pass phrase 42"


def departments(db_demo: Demo) -> tuple[str, str]:
    found = sorted({v.department for v in db_demo.inv.list_vms().items if v.department})
    assert len(found) >= 2, "the demo has VMs of several departments"
    return found[0], found[1]


def user(db_demo: Demo, role: str, department: str | None = None) -> str:
    """A new user of ``role`` (in ``department``), with PASSWORD; returns the name."""
    name = f"{role}-{secrets.token_hex(3)}"
    UserService(db_demo.inv.db).add(
        name, roles=[role], departments=[department] if department else [], password=PASSWORD
    )
    return name


def sign_in(client: TestClient, name: str) -> str:
    """Sign in with the password form; returns where the browser lands."""
    client.cookies.clear()
    csrf = CSRF.search(client.get("/login").text)
    assert csrf
    r = client.post(
        "/login",
        data={"csrf": csrf.group(1), "user": name, "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def csrf(client: TestClient, path: str) -> str:
    found = CSRF.search(client.get(path).text)
    assert found
    return found.group(1)


def service(db_demo: Demo) -> RequestService:
    svc: RequestService = db_demo.app.state.requests
    return svc


def principal(db_demo: Demo, name: str) -> Principal:
    return UserService(db_demo.inv.db).principal(name)


def pending(db_demo: Demo, requester: str, department: str, purpose: str = "tests") -> RequestView:
    """A request sent by ``requester``: the test rules leave every one to an approver."""
    spec = RequestSpec("debian-12", 1, Size(1, 1024, 10), requester, department, purpose, "dev", 30)
    made = service(db_demo).create(spec, principal(db_demo, requester), submit=True)
    assert made.state is RequestState.pending, made.reasons
    return made


def decisions(db_demo: Demo, request_id: int) -> int:
    with db_demo.inv.db.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(m.RequestDecision)
                .where(m.RequestDecision.request_id == request_id)
            )
            or 0
        )


def test_each_role_lands_on_the_page_of_what_it_decides(client: TestClient, db_demo: Demo) -> None:
    mine, _ = departments(db_demo)
    assert sign_in(client, user(db_demo, "requester", mine)) == "/requests"
    assert sign_in(client, user(db_demo, "approver", mine)) == "/approvals"
    assert sign_in(client, user(db_demo, "operator")) == "/admin"
    assert sign_in(client, user(db_demo, "admin")) == "/admin"
    assert sign_in(client, user(db_demo, "auditor")) == "/audit"


def test_the_audit_page_shows_the_log_by_who_and_what_to_auditors_only(
    client: TestClient, db_demo: Demo
) -> None:
    """The auditor reads the same entries as ``AuditLog.list``, filtered and paged; a requester
    and an approver are refused on the server."""
    mine, _ = departments(db_demo)
    actor = user(db_demo, "admin")
    users = UserService(db_demo.inv.db)
    with acting_as(Actor(actor, "admin", "test")):  # more than a page of entries
        for i in range(55):
            users.add(f"filler-{secrets.token_hex(3)}-{i}", roles=["requester"])
    for role in ("requester", "approver"):
        sign_in(client, user(db_demo, role, mine))
        assert client.get("/audit").status_code == 403
    sign_in(client, user(db_demo, "auditor"))
    log = AuditLog(db_demo.inv.db)
    first = client.get("/audit")
    assert first.status_code == 200
    shown = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', first.text)]
    assert shown == [e.seq for e in log.list(limit=50)]
    later = re.search(r'href="(/audit\?after=\d+)" rel="next"', first.text)
    assert later is not None, (len(shown), first.text[-600:])  # more than one page
    second = client.get(later.group(1).replace("&amp;", "&"))
    assert [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', second.text)] == [
        e.seq for e in log.list(after_seq=shown[-1], limit=50)
    ]
    narrowed = client.get("/audit", params={"user": actor})
    rows = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', narrowed.text)]
    assert len(rows) == 50 and rows == [e.seq for e in log.list(user=actor, limit=50)]
    assert client.get("/audit", params={"user": "a\x1bb"}).status_code == 422


def test_a_requester_sends_a_request_sees_why_it_waits_and_withdraws_it(
    client: TestClient, db_demo: Demo
) -> None:
    mine, _ = departments(db_demo)
    name = user(db_demo, "requester", mine)
    sign_in(client, name)
    form = {
        "csrf": csrf(client, "/requests"),
        "template": "debian-12",
        "count": "2",
        "vcpus": "2",
        "memory_mib": "2048",
        "disk_gb": "12.5",
        "department": mine,
        "environment": "dev",
        "lease_days": "45",
        "purpose": "load tests for the billing rewrite",
    }
    r = client.post("/requests", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    (made,) = service(db_demo).listing(principal(db_demo, name), mine=True)
    assert (made.state, made.requester, made.spec.owner) == (RequestState.pending, name, name)
    assert made.spec.size == Size(2, 2048, 12.5) and made.spec.count == 2
    assert (made.spec.department, made.spec.lease_days) == (mine, 45)
    assert r.headers["location"] == f"/requests#request-{made.id}"
    page = client.get("/requests").text
    assert f'id="request-{made.id}"' in page and "auto_approve.off" in page
    assert "load tests for the billing rewrite" in page
    r = client.post(
        f"/requests/{made.id}/withdraw",
        data={"csrf": csrf(client, "/requests")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert service(db_demo).get(made.id, principal(db_demo, name)).state is RequestState.cancelled
    with db_demo.inv.db.session() as s:  # the audit log names the requester, from the web
        actors = s.execute(
            select(m.AuditEntry.actor, m.AuditEntry.origin).where(
                m.AuditEntry.target == f"request:{made.id}", m.AuditEntry.actor == name
            )
        ).all()
    assert actors and all(o.startswith("web ") for _, o in actors), actors


def test_a_request_for_another_department_or_with_a_bad_number_changes_nothing(
    client: TestClient, db_demo: Demo
) -> None:
    mine, theirs = departments(db_demo)
    name = user(db_demo, "requester", mine)
    sign_in(client, name)
    form = {
        "csrf": csrf(client, "/requests"),
        "template": "debian-12",
        "count": "1",
        "vcpus": "2",
        "memory_mib": "2048",
        "disk_gb": "10",
        "department": theirs,
        "environment": "dev",
        "lease_days": "30",
        "purpose": "not mine to ask",
    }
    assert client.post("/requests", data=form).status_code == 403
    bad = client.post("/requests", data={**form, "department": mine, "vcpus": "two"})
    assert bad.status_code == 422 and "the vCPUs must be a whole number" in bad.text
    assert 'value="not mine to ask"' in bad.text  # the form comes back as it was typed
    assert service(db_demo).listing(principal(db_demo, name), mine=True) == []


def test_a_requester_sees_the_quota_left_in_each_department(
    client: TestClient, db_demo: Demo
) -> None:
    mine, _ = departments(db_demo)
    running = db_demo.inv.list_vms(VMFilter(department=mine)).total
    admin = principal(db_demo, user(db_demo, "admin"))
    db_demo.app.state.quotas.set(mine, Limits(vms=running + 5), admin)
    sign_in(client, user(db_demo, "requester", mine))
    page = client.get("/requests").text
    row = re.search(r"<td>vms</td>(.*?)</tr>", page)
    assert row, page
    numbers = re.findall(r'class="num">([^<]+)<', row.group(1))
    used = db_demo.app.state.quotas.get(mine, admin).used.vms
    assert used >= running
    assert numbers == [f"{used:,.1f}", f"{running + 5:,.1f}", f"{max(0, running + 5 - used):,.1f}"]


def test_a_requester_posting_an_approval_gets_403_and_nothing_changes(
    client: TestClient, db_demo: Demo
) -> None:
    mine, _ = departments(db_demo)
    asker = user(db_demo, "requester", mine)
    request = pending(db_demo, asker, mine)
    before = decisions(db_demo, request.id)
    sign_in(client, user(db_demo, "requester", mine))
    token = csrf(client, "/requests")
    for action in ("approve", "deny"):
        r = client.post(f"/requests/{request.id}/{action}", data={"csrf": token, "note": "x"})
        assert r.status_code == 403, (action, r.text)
    assert client.get("/approvals").status_code == 403
    assert service(db_demo).get(request.id, principal(db_demo, asker)).state is RequestState.pending
    assert decisions(db_demo, request.id) == before


def test_an_approver_of_another_department_cannot_decide_nor_see_it(
    client: TestClient, db_demo: Demo
) -> None:
    mine, theirs = departments(db_demo)
    asker = user(db_demo, "requester", mine)
    request = pending(db_demo, asker, mine)
    before = decisions(db_demo, request.id)
    sign_in(client, user(db_demo, "approver", theirs))
    assert f"request-{request.id}" not in client.get("/approvals").text
    token = csrf(client, "/approvals")
    r = client.post(f"/requests/{request.id}/approve", data={"csrf": token})
    assert r.status_code == 404  # another department's request is as if it did not exist
    assert service(db_demo).get(request.id, principal(db_demo, asker)).state is RequestState.pending
    assert decisions(db_demo, request.id) == before


def test_an_approver_approves_one_and_denies_another_with_a_reason(
    client: TestClient, db_demo: Demo
) -> None:
    mine, _ = departments(db_demo)
    asker = user(db_demo, "requester", mine)
    first, second = pending(db_demo, asker, mine, "first"), pending(db_demo, asker, mine, "second")
    approver = user(db_demo, "approver", mine)
    sign_in(client, approver)
    queue = client.get("/approvals").text
    for r in (first, second):
        assert f'id="request-{r.id}"' in queue
    assert f"{first.monthly_cost:,.2f} {first.currency}" in queue  # the cost
    assert "auto_approve.off" in queue  # the rule that sent it here
    token = csrf(client, "/approvals")
    ok = client.post(
        f"/requests/{first.id}/approve",
        data={"csrf": token, "note": "fine"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    who = principal(db_demo, asker)
    done = service(db_demo).get(first.id, who)
    assert done.state is RequestState.approved and done.approvers == (approver,)
    no_reason = client.post(f"/requests/{second.id}/deny", data={"csrf": token, "note": " "})
    assert no_reason.status_code == 422 and "say why" in no_reason.text
    assert service(db_demo).get(second.id, who).state is RequestState.pending
    client.post(f"/requests/{second.id}/deny", data={"csrf": token, "note": "use the pool VMs"})
    denied = service(db_demo).get(second.id, who)
    assert denied.state is RequestState.denied
    assert denied.decisions[-1].actor == approver
    assert denied.decisions[-1].note == "use the pool VMs"
    queue = client.get("/approvals").text
    assert f'id="request-{first.id}"' not in queue and f'id="request-{second.id}"' not in queue


def test_an_approver_never_decides_their_own_request(client: TestClient, db_demo: Demo) -> None:
    mine, _ = departments(db_demo)
    approver = user(db_demo, "approver", mine)
    own = pending(db_demo, approver, mine)
    sign_in(client, approver)
    assert f'id="request-{own.id}"' not in client.get("/approvals").text
    r = client.post(f"/requests/{own.id}/approve", data={"csrf": csrf(client, "/approvals")})
    assert r.status_code == 403 and "never decides their own request" in r.text
    assert service(db_demo).get(own.id, principal(db_demo, approver)).state is RequestState.pending


def test_a_decision_without_the_form_token_is_refused(client: TestClient, db_demo: Demo) -> None:
    mine, _ = departments(db_demo)
    request = pending(db_demo, user(db_demo, "requester", mine), mine)
    sign_in(client, user(db_demo, "approver", mine))
    r = client.post(f"/requests/{request.id}/approve", data={"csrf": "forged"})
    assert r.status_code == 403
    assert decisions(db_demo, request.id) == 2  # create and submit only


def test_the_ha_page_shows_the_plan_to_operators_only(client: TestClient, db_demo: Demo) -> None:
    sign_in(client, user(db_demo, "operator"))
    page = client.get("/ha")
    assert page.status_code == 200
    assert "No HA manager has saved a round yet" in page.text
    hosts = [h.name for h in db_demo.inv.list_hosts()]
    assert any(f"<caption>{h} fails:" in page.text for h in hosts), page.text
    # A manager's round, as the live manager saves it: one host suspect, its event an alert.
    state = initial_state(live_fleet(db_demo.inv).fleet)
    suspect = sorted(state.hosts)[0]
    state.hosts[suspect] = HostRecord(state=HostState.suspect, failed_checks=1)
    event = Event(time.time(), "host_suspect", host=suspect, detail="missed 1 check")
    save_round(db_demo.inv.db, DEFAULT_NAME, {"manager": state.to_dict(), "leader": "web-test"},
               event.t, [event.to_dict()])  # fmt: skip
    doc = lhtml.document_fromstring(client.get("/ha").text)
    host_rows = {r.xpath("string(td[1])"): r.xpath("string(td[2])") for r in
                 doc.xpath("//section[@aria-labelledby='hosts']//tbody/tr")}  # fmt: skip
    assert host_rows[suspect] == "suspect" and len(host_rows) == len(hosts)
    vm_rows = doc.xpath("//section[@aria-labelledby='vms']//tbody/tr")
    assert len(vm_rows) == len(state.vms) > 0
    assert "web-test" in doc.text_content() and "missed 1 check" in doc.text_content()
    mine, _ = departments(db_demo)
    sign_in(client, user(db_demo, "requester", mine))
    assert client.get("/ha").status_code == 403


def test_the_backup_page_holds_each_vms_newest_point_against_its_rpo(
    client: TestClient, db_demo: Demo
) -> None:
    fresh, stale = db_demo.inv.list_vms(VMFilter(state="running"), limit=2).items
    now = datetime.now(UTC)
    with db_demo.inv.db.session() as s:
        for vm, age in ((fresh, timedelta(minutes=5)), (stale, timedelta(days=3))):
            for extra in (timedelta(days=9), timedelta()):  # an older point, then the newest
                at = now - age - extra
                point = f"{at:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
                s.merge(catalog_row(Manifest(point, vm.uuid, vm.name, "kvm", "full",
                                             None, "cp", at, ())))  # fmt: skip
    sign_in(client, user(db_demo, "operator"))
    page = client.get("/backups")
    assert page.status_code == 200
    for vm, verdict in ((fresh, "met"), (stale, "missed")):
        row = re.search(rf'href="/vms/{vm.uuid}">.*?</tr>', page.text, re.S)
        assert row and f">{verdict}<" in row.group(0), (vm.name, row)
        assert "5 min" in row.group(0) if verdict == "met" else "4,320 min" in row.group(0)
    mine, _ = departments(db_demo)
    sign_in(client, user(db_demo, "requester", mine))
    assert client.get("/backups").status_code == 403


def firing_alert(db_demo: Demo) -> str:
    """A VM above the example rules' CPU threshold for longer than its 10 minutes."""
    svc = alerts_cli.service(db_demo.app.state.settings, db_demo.inv.db)
    vm = f"vm-{secrets.token_hex(3)}"
    now = time.time()
    for at in (now - 900, now):
        svc.evaluate(Snapshot(at, latest={("vm", "cpu_pct"): {vm: 99.0}}, hosts={vm: "kvm-9"}))
    (alert,) = [a for a in svc.alerts(AlertState.firing) if dict(a.labels).get("entity") == vm]
    return alert.fingerprint


def alert_row(db_demo: Demo, fingerprint: str) -> m.AlertRow:
    with db_demo.inv.db.session() as s:
        row = s.get(m.AlertRow, fingerprint)
        assert row is not None
        s.expunge(row)
        return row


def test_an_operator_acknowledges_and_silences_an_alert(client: TestClient, db_demo: Demo) -> None:
    fingerprint = firing_alert(db_demo)
    operator = user(db_demo, "operator")
    sign_in(client, operator)
    page = client.get("/alerts", params={"state": "firing"}).text
    assert f'action="/alerts/{fingerprint}/ack"' in page
    token = csrf(client, "/alerts")
    r = client.post(f"/alerts/{fingerprint}/ack", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    row = alert_row(db_demo, fingerprint)
    assert (row.state, row.acked_by) == ("acknowledged", operator)
    svc = alerts_cli.service(db_demo.app.state.settings, db_demo.inv.db)
    (alert,) = [a for a in svc.alerts() if a.fingerprint == fingerprint]
    labels = dict(alert.labels)
    assert labels.get("host") == "kvm-9"
    r = client.post(
        f"/alerts/{fingerprint}/silence",
        data={"csrf": token, "duration": "4h", "comment": "disk swap tonight"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with db_demo.inv.db.session() as s:
        silence = s.scalars(
            select(m.AlertSilenceRow).where(m.AlertSilenceRow.comment == "disk swap tonight")
        ).one()
        assert silence.created_by == operator
        assert silence.matchers == labels
        assert 4 * 3600 - 60 < silence.ends_at - time.time() <= 4 * 3600
    bad = client.post(f"/alerts/{fingerprint}/silence", data={"csrf": token, "duration": "99y"})
    assert bad.status_code == 422


def test_an_auditor_reads_alerts_but_may_not_acknowledge(client: TestClient, db_demo: Demo) -> None:
    fingerprint = firing_alert(db_demo)
    sign_in(client, user(db_demo, "auditor"))
    page = client.get("/alerts")
    assert page.status_code == 200 and fingerprint in page.text
    assert "Acknowledge" not in page.text and "Silence for" not in page.text
    token = csrf(client, "/alerts")
    assert client.post(f"/alerts/{fingerprint}/ack", data={"csrf": token}).status_code == 403
    r = client.post(f"/alerts/{fingerprint}/silence", data={"csrf": token, "duration": "1h"})
    assert r.status_code == 403
    row = alert_row(db_demo, fingerprint)
    assert (row.state, row.acked_by) == ("firing", None)
    mine, _ = departments(db_demo)
    sign_in(client, user(db_demo, "requester", mine))
    assert client.get("/alerts").status_code == 403


def test_a_new_role_is_a_principal_of_that_role(db_demo: Demo) -> None:
    """The helper's users hold what the tests say (a control for the refusals above)."""
    mine, _ = departments(db_demo)
    p = principal(db_demo, user(db_demo, "approver", mine))
    assert p.roles == frozenset({Role.approver}) and p.departments == frozenset({mine})


def test_the_request_pages_are_strict_and_escape_what_people_typed(
    client: TestClient, db_demo: Demo
) -> None:
    mine, _ = departments(db_demo)
    asker = user(db_demo, "requester", mine)
    hostile = "<script>document.title='pwned'</script>"
    pending(db_demo, asker, mine, purpose=hostile)
    sign_in(client, user(db_demo, "approver", mine))
    for path in ("/approvals", "/requests"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-security-policy"] == CSP
        assert hostile not in r.text
    assert (
        "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"
        in client.get("/approvals").text
    )


def test_a_requester_sees_their_vms_and_their_leases(client: TestClient, db_demo: Demo) -> None:
    mine, _ = departments(db_demo)
    name = user(db_demo, "requester", mine)
    vm = db_demo.inv.list_vms(VMFilter(department=mine), limit=1).items[0]
    ends = date(2031, 5, 17)
    db_demo.inv.set_metadata(vm.uuid, {"owner": name, "expires_on": ends}, actor="tests")
    sign_in(client, name)
    doc = lhtml.document_fromstring(client.get("/requests").text)
    rows = doc.xpath("//section[@aria-labelledby='my-vms']//tbody/tr")
    assert [(r.xpath("string(td[1])"), r.xpath("string(td[4])")) for r in rows] == [
        (vm.name, ends.isoformat())
    ]


def test_metadata_is_edited_on_the_vm_page_where_allowed_and_refused_elsewhere(
    client: TestClient, db_demo: Demo
) -> None:
    """An approver annotates their department's VM from its page (audited as them); moving it
    to another department, another department's VM, an auditor and a forged form token are
    refused on the server, and the VM is unchanged after each refusal."""
    mine, other = departments(db_demo)
    vm = next(v for v in db_demo.inv.list_vms().items if v.department == mine)
    theirs = next(v for v in db_demo.inv.list_vms().items if v.department == other)
    approver = user(db_demo, "approver", mine)
    sign_in(client, approver)
    page = client.get(f"/vms/{vm.uuid}")
    assert 'id="edit-metadata"' in page.text
    token = csrf(client, f"/vms/{vm.uuid}")
    done = client.post(
        f"/vms/{vm.uuid}/metadata",
        data={
            "csrf": token,
            "owner": "ops-team",
            "purpose": "web tier\nsecond line",
            "tags": "b, a",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    after = db_demo.inv.find_vm(vm.uuid)
    assert (after.owner, after.purpose, after.tags) == (
        "ops-team",
        "web tier\nsecond line",
        ("a", "b"),
    )
    [entry] = [
        e for e in AuditLog(db_demo.inv.db).list(user=approver) if e.target == f"vm:{vm.uuid}"
    ]
    assert entry.origin.startswith("web ") and (entry.after or {}).get("owner") == "ops-team"

    def refused(uuid: str, data: dict[str, str], status: int) -> None:
        before = db_demo.inv.find_vm(uuid)
        r = client.post(f"/vms/{uuid}/metadata", data=data, follow_redirects=False)
        assert r.status_code == status, r.text
        assert db_demo.inv.find_vm(uuid) == before

    refused(vm.uuid, {"csrf": token, "department": other}, 403)  # out of their department
    refused(vm.uuid, {"csrf": "forged", "owner": "mallory"}, 403)
    refused(theirs.uuid, {"csrf": token, "owner": "mallory"}, 404)
    sign_in(client, user(db_demo, "auditor"))
    assert 'id="edit-metadata"' not in client.get(f"/vms/{vm.uuid}").text
    refused(vm.uuid, {"csrf": csrf(client, f"/vms/{vm.uuid}"), "owner": "mallory"}, 403)
