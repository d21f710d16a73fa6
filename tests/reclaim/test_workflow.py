"""The reclamation workflow end to end on test-driver hosts, with a real SMTP server."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from corral.engines.reclaim import Step
from corral.errors import ConflictError, ForbiddenError, NotFoundError
from corral.hypervisor import xmlsafe
from corral.inventory.service import Inventory
from tests.conftest import Clock
from tests.inventory.conftest import domain, edit_node
from tests.reclaim.conftest import Inbox, make_service

WEB = "web-01"


def _domain_names(node_file: Path) -> set[str]:
    root = xmlsafe.parse(node_file.read_bytes(), "node file")
    return {d.findtext("name") or "" for d in root.iterfind("domain")}


def _token(inbox: Inbox, case_id: int) -> str:
    (notice,) = inbox.for_case(case_id, "notify")
    found = re.search(r'"token": "([A-Za-z0-9_\-]+)"', notice.get_content())
    assert found, notice.get_content()
    return found.group(1)


def _history(fleet: Inventory, name: str) -> list[str]:
    uuid = fleet.find_vm(name).uuid
    return [e.kind for e in reversed(fleet.events(vm=uuid, limit=200))]


def _users(fleet: Inventory, host: str, network: str) -> int:
    return next(n.vms for n in fleet.list_networks() if (n.host, n.name) == (host, network))


def test_whole_way_to_deletion(fleet: Inventory, smtp: tuple, clock: Clock, nodes: Path) -> None:
    inbox, settings = smtp
    svc = make_service(fleet, settings)
    assert _users(fleet, "a", "default") == 1  # web-01's NIC
    case = svc.flag(WEB, category="idle", reason="idle for 30 days", actor="ops")
    assert case.state == "flagged" and case.monthly_cost > case.monthly_saving_off > 0

    assert [o.result for o in svc.run()] == ["done"]
    (notice,) = inbox.for_case(case.id, "notify")
    assert notice["To"] == "alice@example.test"
    assert "web-01" in notice["Subject"]
    assert svc.case(case.id).state == "notified"

    assert svc.run()[0].result == "waiting"  # the owner has 7 days
    clock.advance(days=8)
    assert svc.run()[0].result == "done"
    vm = fleet.find_vm(WEB)
    assert vm.state == "shutoff" and "reclaim:quarantined" in vm.tags
    assert vm.autostart is False
    assert inbox.for_case(case.id, "quarantine")

    clock.advance(days=8)
    svc.run()
    vm = fleet.find_vm(WEB)
    assert f"corral-archive-{case.id}" in {s["name"] for s in vm.snapshot_list}
    assert "<domain" in (svc.case(case.id) and _archive_xml(fleet, case.id))

    clock.advance(days=15)
    (waiting,) = svc.run()
    assert waiting.result == "waiting" and "approval" in waiting.detail
    with pytest.raises(ForbiddenError):
        svc.approve(case.id, "delete", "ops")  # four eyes: not the one who flagged
    svc.approve(case.id, "delete", "manager", "checked with finance")
    assert svc.run()[0].result == "done"

    done = svc.case(case.id)
    assert done.state == "deleted"
    assert "/var/lib/libvirt/images/a/web-01.qcow2" in done.deleted_volumes
    assert WEB not in _domain_names(nodes / "host-a.xml")
    assert fleet.find_vm(WEB).deleted_at is not None
    assert _users(fleet, "a", "default") == 0  # the network lost its user with the VM
    history = _history(fleet, WEB)
    for kind in (
        "reclaim-flagged",
        "reclaim-notified",
        "quarantined",
        "archived",
        "reclaim-approved",
        "reclaim-deleted",
        "deleted",
    ):
        assert kind in history, (kind, history)
    # quarantined on day 8, archived on day 16, deleted on day 31: 23 days at the powered-off rate
    savings = svc.savings()
    expected = done.monthly_saving_off * 23 / 30.4375
    assert savings.realized == pytest.approx(expected, abs=0.05)
    assert savings.monthly_now == pytest.approx(done.monthly_cost)
    clock.advance(days=30.4375)
    assert svc.savings().realized == pytest.approx(expected + done.monthly_cost, abs=0.05)


def _archive_xml(fleet: Inventory, case_id: int) -> str:
    from corral.store import models as m

    with fleet.db.session() as s:
        c = s.get(m.ReclaimCase, case_id)
        assert c is not None
        return c.archive_xml or ""


def test_restore_from_archive_puts_everything_back(
    fleet: Inventory, smtp: tuple, clock: Clock
) -> None:
    inbox, settings = smtp
    svc = make_service(fleet, settings)
    before = fleet.find_vm(WEB)
    case = svc.flag(WEB, category="idle", reason="idle", actor="ops")
    svc.run()
    clock.advance(days=8)
    svc.run()
    clock.advance(days=8)
    svc.run()
    assert svc.case(case.id).state == "archived"

    svc.restore(case.id, "ops")
    after = fleet.find_vm(WEB)
    assert svc.case(case.id).state == "restored"
    assert after.state == "running"
    assert after.tags == before.tags
    assert after.autostart == before.autostart
    assert {s["name"] for s in after.snapshot_list} == {s["name"] for s in before.snapshot_list}
    assert inbox.for_case(case.id, "restore")
    assert "restored" in _history(fleet, WEB)
    with pytest.raises(ConflictError):
        svc.restore(case.id, "ops")  # closed


def test_owner_extends_through_the_mailed_token(
    fleet: Inventory, smtp: tuple, clock: Clock
) -> None:
    inbox, settings = smtp
    svc = make_service(fleet, settings)
    case = svc.flag(WEB, category="idle", reason="idle", actor="ops")
    svc.run()
    clock.advance(days=8)
    svc.run()  # quarantined: the owner answers late, the VM must come back
    token = _token(inbox, case.id)
    until = clock.now.date() + timedelta(days=90)
    with pytest.raises(NotFoundError):
        svc.respond("not-the-token", "extend", "alice", until, "quarter-end batch")
    svc.respond(token, "extend", "alice@example.test", until, "quarter-end batch")

    done = svc.case(case.id)
    assert done.state == "extended" and done.extend_reason == "quarter-end batch"
    vm = fleet.find_vm(WEB)
    assert vm.state == "running" and vm.expires_on == until
    assert "reclaim:quarantined" not in vm.tags
    with pytest.raises(ConflictError, match="extended it until"):
        svc.flag(WEB, category="idle", reason="again", actor="ops")
    clock.advance(days=200)
    assert svc.run() == []
    assert fleet.find_vm(WEB).deleted_at is None


def test_bad_requests_are_refused(fleet: Inventory, smtp: tuple, clock: Clock) -> None:
    _, settings = smtp
    svc = make_service(fleet, settings)
    case = svc.flag(WEB, category="idle", reason="idle", actor="ops")
    with pytest.raises(ConflictError, match="already has an open"):
        svc.flag(WEB, category="idle", reason="twice", actor="ops")
    with pytest.raises(ConflictError, match="cannot restore"):
        svc.restore(case.id, "ops")
    svc.run()  # notified: the owner has 7 days before the quarantine
    with pytest.raises(ConflictError, match="not due"):
        svc.execute(case.id, Step.quarantine, "ops", {})
    with pytest.raises(ConflictError, match="reason"):
        svc.extend(case.id, clock.now.date() + timedelta(days=3), "  ", "alice")
    with pytest.raises(ConflictError, match="more than"):
        svc.extend(case.id, clock.now.date() + timedelta(days=4000), "why", "alice")
    with pytest.raises(NotFoundError):
        svc.case(999)
    svc.cancel(case.id, "ops", "false positive: month-end job")
    assert svc.case(case.id).state == "cancelled"
    # a closed case lets the VM be flagged again
    assert svc.flag(WEB, category="idle", reason="idle again", actor="ops").state == "flagged"


def test_a_vm_deleted_outside_corral_closes_its_case(
    fleet: Inventory, smtp: tuple, clock: Clock, nodes: Path
) -> None:
    _, settings = smtp
    svc = make_service(fleet, settings)
    case = svc.flag(WEB, category="idle", reason="idle", actor="ops")
    svc.run()
    edit_node(nodes / "host-a.xml", lambda n: n.remove(domain(n, WEB)))
    fleet.sync()
    assert [(o.step, o.result) for o in svc.run(dry_run=True)] == [("close", "would-do")]
    (closed,) = svc.run()
    assert (closed.step, closed.result) == ("close", "done")
    assert "deleted outside Corral" in closed.detail
    done = svc.case(case.id)
    assert done.state == "cancelled" and done.history[-1].kind == "reclaim-cancelled"
    assert svc.run() == []


def test_an_unreachable_host_fails_the_step_and_loses_nothing(
    fleet: Inventory, smtp: tuple, clock: Clock, nodes: Path
) -> None:
    inbox, settings = smtp
    svc = make_service(fleet, settings)
    case = svc.flag(WEB, category="idle", reason="idle", actor="ops")
    svc.run()
    clock.advance(days=8)
    good = (nodes / "host-a.xml").read_bytes()
    (nodes / "host-a.xml").write_text("<node><domain>broken")
    (failed,) = svc.run()
    assert (failed.step, failed.result) == ("quarantine", "failed")
    assert "could not be loaded" in failed.detail and "host-a.xml" not in failed.detail
    assert svc.case(case.id).state == "notified"
    assert not inbox.for_case(case.id, "quarantine")
    (nodes / "host-a.xml").write_bytes(good)
    (done,) = svc.run()
    assert (done.step, done.result) == ("quarantine", "done")
    assert fleet.find_vm(WEB).state == "shutoff"
    assert len(inbox.for_case(case.id, "quarantine")) == 1


def test_two_writers_cannot_both_change_a_case(fleet: Inventory, smtp: tuple) -> None:
    """Optimistic locking: a case changed since it was read refuses the second write."""
    from sqlalchemy.orm.exc import StaleDataError

    from corral.store import models as m

    _, settings = smtp
    svc = make_service(fleet, settings)
    cid = svc.flag(WEB, category="idle", reason="idle", actor="ops").id
    with fleet.db.engine.connect() as conn, Session(bind=conn) as stale:
        row = stale.get(m.ReclaimCase, cid)
        assert row is not None and row.state == "flagged"
        svc.cancel(cid, "ops", "false positive")  # another process writes meanwhile
        row.pending = {"step": "notify", "actor": "scheduler"}
        with pytest.raises(StaleDataError):
            stale.flush()
    assert svc.case(cid).state == "cancelled" and svc.case(cid).pending is None
