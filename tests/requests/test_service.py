"""Issue 10 items 2-4 on a real database (SQLite and PostgreSQL): the request life cycle, every
approval rule, every quota dimension, reservations, expiry, the provisioner's hand-off, the
approvers' e-mail over a real SMTP server (aiosmtpd) and the audit log of it all."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from corral.domain.access import Role
from corral.domain.requests import QuotaDimension, RequestState, Size
from corral.engines.approval import AutoApprove, Limits
from corral.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from corral.inventory.service import Inventory
from corral.services.audit import AuditLog
from corral.services.quotas import QuotaService
from corral.services.requests import RequestService
from corral.services.users import UserService
from corral.store import models as m
from corral.store.db import Database
from tests.conftest import Clock
from tests.inventory.conftest import nodes  # noqa: F401  (fixture)
from tests.reclaim.conftest import smtp  # noqa: F401  (fixture)
from tests.requests.conftest import (
    ALICE,
    ANN,
    ARNO,
    BLUE,
    BOSS,
    RED,
    MakeService,
    principal,
    spec,
)

S = RequestState


def reservations(db: Database) -> list[tuple[int, str]]:
    with db.session() as s:
        rows = s.execute(select(m.RequestReservation.request_id, m.RequestReservation.host))
        return sorted((r[0], r[1]) for r in rows)


def test_a_quote_shows_cost_placement_and_quota_and_books_nothing(
    service: RequestService, quotas: QuotaService, db: Database
) -> None:
    quotas.set(RED, Limits(vms=2), BOSS)
    q = service.quote(spec(count=3), ALICE)
    assert q.currency == "USD" and q.per_vm_cost == pytest.approx(54.65, abs=0.01)
    assert q.monthly_cost == pytest.approx(3 * 54.65, abs=0.02)
    assert q.capacity.status.value == "placed" and len(q.capacity.slots) == 3
    assert {s.host for s in q.capacity.slots} <= {"h1", "h2", "h3", "h4"}
    assert [b.dimension for b in q.quota] == [QuotaDimension.vms]
    assert q.evaluation.decision.value == "deny"
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(m.VMRequest)) == 0


def test_a_small_dev_request_is_approved_on_submit_and_books_its_capacity(
    service: RequestService, db: Database, clock: Clock
) -> None:
    draft = service.create(spec(count=2), ALICE)
    assert draft.state is S.draft and draft.requester == "alice"
    done = service.submit(draft.id, ALICE)
    assert done.state is S.approved and done.approvals_needed == 0 and done.reasons == ()
    assert len(done.placement) == 2 and done.capacity_status == "placed"
    assert sorted(h for _, h in reservations(db)) == sorted(x.host for x in done.placement)
    assert [(d.actor, d.action, d.at) for d in done.decisions] == [
        ("alice", "create", clock.now),
        ("alice", "submit", clock.now),
    ]
    with pytest.raises(ConflictError, match="only a draft one can be submitted"):
        service.submit(draft.id, ALICE)


def test_a_request_above_the_auto_limit_waits_for_one_approver(
    service: RequestService, db: Database
) -> None:
    pending = service.create(spec(count=4), ALICE, submit=True)  # 218.59 USD
    assert pending.state is S.pending and pending.approvals_needed == 1
    assert [r.rule for r in pending.reasons] == ["auto_approve.cost", "approvals"]
    assert reservations(db) == []  # nothing booked before approval
    approved = service.approve(pending.id, ANN, "fine")
    assert approved.state is S.approved and approved.approvers == ("ann",)
    assert len(reservations(db)) == 4
    last = approved.decisions[-1]
    assert (last.actor, last.action, last.note) == ("ann", "approve", "fine")


def test_prod_needs_two_distinct_approvers(service: RequestService) -> None:
    r = service.create(spec(environment="prod"), ALICE, submit=True)
    assert r.state is S.pending and r.approvals_needed == 2
    assert [x.rule for x in r.reasons] == ["two_approvers.production", "approvals"]
    once = service.approve(r.id, ANN)
    assert once.state is S.pending and once.reasons[-1].text == "1 of 2 distinct approvals so far"
    with pytest.raises(ConflictError, match="already approved"):
        service.approve(r.id, ANN)
    twice = service.approve(r.id, ARNO)
    assert twice.state is S.approved and twice.approvers == ("ann", "arno")


def test_an_expensive_dev_request_needs_two_approvers(service: RequestService) -> None:
    r = service.create(spec(count=1, size=Size(4, 4096, 4500.0)), ALICE, submit=True)
    assert r.monthly_cost >= 1000 and r.approvals_needed == 2
    assert [x.rule for x in r.reasons] == ["two_approvers.cost", "approvals"]


def test_an_approver_never_approves_their_own_request(service: RequestService) -> None:
    own = service.create(spec(count=4), ANN, submit=True)  # ann asks, as an approver may
    with pytest.raises(ForbiddenError, match="never decides their own request"):
        service.approve(own.id, ANN)
    owned = service.create(spec(count=4, owner="arno"), ALICE, submit=True)
    with pytest.raises(ForbiddenError, match="never decides their own request"):
        service.approve(owned.id, ARNO)
    with pytest.raises(ForbiddenError, match="never decides their own request"):
        service.deny(owned.id, ARNO, "no")
    assert service.approve(own.id, ARNO).state is S.approved


def test_denied_cancelled_and_expired_are_final(
    service: RequestService, db: Database, clock: Clock
) -> None:
    a = service.create(spec(count=4), ALICE, submit=True)
    with pytest.raises(ValidationError, match="say why"):
        service.deny(a.id, ANN, " ")
    denied = service.deny(a.id, ANN, "use the shared cluster")
    assert denied.state is S.denied and denied.reasons[0].text == "use the shared cluster"
    with pytest.raises(ConflictError, match="only a pending one can be approved"):
        service.approve(a.id, ARNO)
    with pytest.raises(ConflictError, match=r"denied \(final\)"):
        service.cancel(a.id, ALICE)
    b = service.create(spec(), ALICE, submit=True)
    assert b.state is S.approved and reservations(db)
    assert service.cancel(b.id, ALICE, "not needed").state is S.cancelled
    assert reservations(db) == []  # cancelling an approved request frees its capacity
    c = service.create(spec(count=4), ALICE, submit=True)
    d = service.create(spec(), ALICE, submit=True)
    clock.advance(days=3, seconds=1)  # approved_days 3: d's capacity is released
    assert service.expire() == [d.id]
    clock.advance(days=2)  # pending_days 5
    assert service.expire() == [c.id]
    assert service.get(c.id, ALICE).state is S.expired and reservations(db) == []
    assert (
        service.get(c.id, ALICE).decisions[-1].note == "no decision or provisioning within 5 days"
    )
    with pytest.raises(ConflictError, match=r"expired \(final\)"):
        service.cancel(c.id, ALICE)


def test_the_provisioner_hand_off_releases_the_reservation(
    service: RequestService, db: Database
) -> None:
    a = service.create(spec(count=2), ALICE, submit=True)
    assert service.mark_provisioning(a.id, "provisioner").state is S.provisioning
    assert len(reservations(db)) == 2  # still held while the VMs are made
    done = service.mark_provisioned(a.id, "provisioner", ["uuid-1", "uuid-2"])
    assert done.state is S.provisioned and done.provisioned_vms == ("uuid-1", "uuid-2")
    assert reservations(db) == []
    b = service.create(spec(), ALICE, submit=True)
    failed = service.mark_failed(b.id, "provisioner", "host h2 is gone; rolled back")
    assert failed.state is S.failed and failed.failure_reason == "host h2 is gone; rolled back"
    assert reservations(db) == []
    with pytest.raises(ConflictError, match="cannot become provisioned"):
        service.mark_provisioned(b.id, "provisioner", [])
    pending = service.create(spec(count=4), ALICE, submit=True)
    with pytest.raises(ConflictError, match="pending; it cannot become provisioning"):
        service.mark_provisioning(pending.id, "provisioner")


@pytest.mark.parametrize(
    ("dimension", "limit"),
    [
        (QuotaDimension.vcpus, 3),
        (QuotaDimension.memory_mib, 3 * 1024),
        (QuotaDimension.storage_gb, 30),
        (QuotaDimension.vms, 3),
        (QuotaDimension.monthly_cost, 3 * 54.66),
    ],
)
def test_each_quota_dimension_counts_approved_requests_and_denies_with_its_reason(
    service: RequestService, quotas: QuotaService, db: Database, dimension: QuotaDimension,
    limit: float,
) -> None:  # fmt: skip
    quotas.set(RED, Limits(**{dimension.value: limit}), BOSS)
    first = service.create(spec(count=2), ALICE, submit=True)
    assert first.state is S.approved
    assert quotas.get(RED, ALICE).used.get(dimension) == pytest.approx(limit * 2 / 3, rel=0.01)
    second = service.create(spec(count=2), ALICE, submit=True)  # 2 approved + 2 > 3
    assert second.state is S.denied
    assert [r.rule for r in second.reasons] == [f"quota.{dimension.value}"]
    assert service.create(spec(count=1), ALICE, submit=True).state is S.approved
    service.mark_provisioned(first.id, "provisioner", ["a", "b"])  # no longer held
    assert quotas.get(RED, ALICE).used.get(QuotaDimension.vms) == 1


def test_one_reason_per_exceeded_limit(service: RequestService, quotas: QuotaService) -> None:
    quotas.set(RED, Limits(1, 1024, 10, 1, 60), BOSS)
    denied = service.create(spec(count=2), ALICE, submit=True)
    assert [r.rule for r in denied.reasons] == [f"quota.{d.value}" for d in QuotaDimension]
    assert service.create(spec(count=2, department=BLUE), BOSS, submit=True).state is S.approved


def test_a_request_adding_no_storage_is_not_refused_for_storage(
    service: RequestService, quotas: QuotaService
) -> None:
    quotas.set(RED, Limits(storage_gb=10), BOSS)
    assert service.create(spec(size=Size(1, 1024, 10)), ALICE, submit=True).state is S.approved
    quotas.set(RED, Limits(storage_gb=5), BOSS)  # lowered: red is over on storage now
    diskless = service.create(spec(size=Size(1, 1024, 0)), ALICE, submit=True)
    assert diskless.state is S.approved
    assert service.create(spec(), ALICE, submit=True).state is S.denied


def test_quota_usage_counts_the_department_s_running_vms(
    inventory: Inventory,
    nodes: Path,  # noqa: F811
    quotas: QuotaService,
    make_service: MakeService,
) -> None:
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.sync()
    with inventory.db.session() as s:
        s.execute(update(m.VM).values(department=RED))
        n, vcpus = s.execute(
            select(func.count(), func.sum(m.VM.vcpus)).where(m.VM.is_template.is_(False))
        ).one()
    assert n >= 1
    quotas.set(RED, Limits(vms=n + 1), BOSS)
    used = quotas.get(RED, ALICE).used
    assert (used.vms, used.vcpus) == (n, vcpus)
    service = make_service()
    assert service.create(spec(count=2), ALICE, submit=True).state is S.denied
    assert service.create(spec(count=1), ALICE, submit=True).state is S.approved


def test_a_request_that_breaks_n_plus_k_is_denied_naming_the_host(
    service: RequestService, make_service: MakeService, quotas: QuotaService
) -> None:
    big = Size(8, 16384, 0)
    r = service.create(spec(count=6, size=big), BOSS, submit=True)
    assert r.state is S.denied and r.capacity_status == "breaks_ha"
    assert r.ha_host is not None and [x.rule for x in r.reasons] == ["ha_reserve"]
    assert f"on {r.ha_host}" in r.reasons[0].text and len(r.placement) == 6
    lenient = make_service(ha_breach="approvers")
    asked = lenient.create(spec(count=6, size=big), ALICE, submit=True)
    assert asked.state is S.pending and asked.reasons[-2].rule == "auto_approve.ha_reserve"
    assert lenient.approve(asked.id, ANN).state is S.approved


def test_approved_capacity_is_never_booked_twice(make_service: MakeService) -> None:
    service = make_service(auto_approve=AutoApprove(max_monthly_cost=10_000))
    big = Size(8, 16384, 0)
    first = service.create(spec(count=5, size=big), BOSS, submit=True)  # 40 of 46 vCPUs
    assert first.state is S.approved
    second = service.create(spec(count=1, size=big), BOSS, submit=True)  # 48 > 46
    assert second.state is S.denied and second.capacity_status == "breaks_ha"
    service.cancel(first.id, BOSS)
    assert service.create(spec(count=1, size=big), BOSS, submit=True).state is S.approved


def test_an_approval_that_no_longer_fits_is_refused_and_the_request_stays_pending(
    service: RequestService, quotas: QuotaService
) -> None:
    waiting = service.create(spec(count=4), ALICE, submit=True)
    quotas.set(RED, Limits(vms=3), BOSS)
    with pytest.raises(ConflictError, match="quota vms: 0 used \\+ 4 requested"):
        service.approve(waiting.id, ANN)
    assert service.get(waiting.id, ALICE).state is S.pending


def test_requesters_see_and_act_only_in_their_departments(service: RequestService) -> None:
    blue = service.create(spec(department=BLUE), BOSS)
    mine = service.create(spec(), ALICE)
    with pytest.raises(ForbiddenError, match="only for their departments"):
        service.create(spec(department=BLUE), ALICE)
    with pytest.raises(NotFoundError):
        service.get(blue.id, ALICE)
    with pytest.raises(NotFoundError):
        service.submit(blue.id, ALICE)
    assert [r.id for r in service.listing(ALICE)] == [mine.id]
    assert [r.id for r in service.listing(BOSS)] == [mine.id, blue.id]
    auditor = principal("audrey", Role.auditor)
    assert len(service.listing(auditor)) == 2
    with pytest.raises(ForbiddenError):
        service.submit(mine.id, auditor)
    with pytest.raises(ForbiddenError):
        service.approve(mine.id, ALICE)  # a requester does not decide


def test_required_fields_and_known_environments(service: RequestService) -> None:
    for bad, match in (
        (spec(purpose=" "), "needs a purpose"),
        (spec(owner=""), "needs a owner"),
        (spec(environment="moon"), "environment 'moon' is unknown"),
        (spec(count=0), "1 to 100 VMs"),
        (spec(size=Size(0, 1024, 0)), "at least 1 vCPU"),
    ):
        with pytest.raises(ValidationError, match=match):
            service.create(bad, ALICE)
    with pytest.raises(ValidationError, match="1 to 90 days"):
        service.create(replace(spec(), lease_days=91), ALICE)


def test_approvers_of_the_department_are_mailed_a_link(
    make_service: MakeService,
    people: UserService,
    smtp: tuple[object, object],  # noqa: F811
) -> None:
    from corral.notify.mailer import SmtpMailer

    inbox, settings = smtp
    service = make_service(mailer=SmtpMailer(settings))  # type: ignore[arg-type]
    r = service.create(spec(count=4, owner="arno"), ALICE, submit=True)
    got = {msg["To"]: msg for msg in inbox.messages}  # type: ignore[attr-defined]
    assert sorted(got) == ["ann@example.test"]  # not arno (the owner), not blue's bert
    body = got["ann@example.test"].get_content()
    assert f"http://127.0.0.1:8000/api/v1/requests/{r.id}" in body
    assert f"costs {r.monthly_cost:,.2f} USD a month" in body and "Owner: arno" in body
    assert got["ann@example.test"]["X-Corral-Request"] == str(r.id)
    service.create(spec(), ALICE, submit=True)  # approved at once: nobody is mailed
    assert len(inbox.messages) == 1  # type: ignore[attr-defined]


def test_every_decision_is_in_the_audit_log(service: RequestService, db: Database) -> None:
    from corral.services.audit import Actor, acting_as

    with acting_as(Actor("alice", "requester", "test")):
        r = service.create(spec(count=4), ALICE, submit=True)
    with acting_as(Actor("ann", "approver", "test")):
        service.approve(r.id, ANN)
    log = AuditLog(db)
    entries = log.list(target=f"request:{r.id}")
    assert [(e.actor, e.action) for e in entries][:1] == [("alice", "create")]
    states = [e.after.get("state") for e in entries if e.after and "state" in e.after]
    assert states == ["draft", "pending", "approved"]
    decided = log.list(target=f"request-decision:{r.id}")
    assert [(e.actor, (e.after or {}).get("action")) for e in decided][-1] == ("ann", "approve")
    assert [e.actor for e in log.list(target=f"reservation:{r.id}")] == ["ann"] * 4
    assert log.verify().intact


def test_a_lease_extension_is_a_request_an_approver_of_the_department_decides(
    inventory: Inventory,
    nodes: Path,  # noqa: F811
    make_service: MakeService,
    clock: Clock,
) -> None:
    """Issue 10 item 8: the approval writes the VM's new lease end to its metadata."""
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.sync()
    vm = next(v for v in inventory.list_vms().items if not v.is_template)
    inventory.set_metadata(vm.uuid, {"department": RED, "owner": "alice"})

    def extend(uuid: str, until: date, actor: str) -> None:
        inventory.set_metadata(uuid, {"expires_on": until}, actor=actor)

    service = make_service()
    service.extend_lease = extend
    asked = service.request_extension(vm.uuid, 30, "the tests run longer", ALICE)
    assert (asked.kind, asked.state, asked.vm_uuid) == ("extension", S.pending, vm.uuid)
    assert [r.rule for r in asked.reasons] == ["extension", "approvals"]
    with pytest.raises(NotFoundError):
        service.request_extension(
            vm.uuid, 30, "mine", principal("bo", Role.requester, departments=(BLUE,))
        )
    with pytest.raises(ValidationError, match="1 to 90 days"):
        service.request_extension(vm.uuid, 91, "long", ALICE)
    with pytest.raises(ForbiddenError, match="never decides their own request"):
        service.approve(asked.id, principal("alice", Role.approver))  # the owner
    done = service.approve(asked.id, ANN, "ok")
    assert done.state is S.provisioned
    assert [d.action for d in done.decisions] == ["create", "submit", "approve", "extended"]
    until = clock.now.date() + timedelta(days=30)
    assert done.decisions[-1].note == f"lease ends {until}"
    assert inventory.find_vm(vm.uuid).expires_on == until
    again = service.request_extension(vm.uuid, 10, "and more", ALICE)
    service.approve(again.id, ARNO)  # from the current end, not from today
    later = until + timedelta(days=10)
    assert inventory.find_vm(vm.uuid).expires_on == later


@pytest.mark.parametrize("bad", ["a\nb", "a\x1bb", "a\x00b", "a\ufffeb"])
@pytest.mark.parametrize("field", ["owner", "purpose", "template"])
def test_control_characters_in_a_request_are_refused_by_the_service(
    service: RequestService, field: str, bad: str
) -> None:
    """The CLI reaches the service without the REST schema's pattern: the service checks too
    (the approvers' mail carries these fields)."""
    with pytest.raises(ValidationError, match=r"control or invalid character|line break"):
        service.quote(spec(**{field: bad}), ALICE)


@pytest.mark.parametrize(
    ("reason", "accepted"),
    [("runs longer:\n- load tests\n- sign-off", True), ("tab\tseparated", True), ("a\x1bb", False)],
)
def test_an_extension_reason_may_span_lines_but_holds_no_control_character(
    inventory: Inventory,
    nodes: Path,  # noqa: F811
    make_service: MakeService,
    reason: str,
    accepted: bool,
) -> None:
    """A reason is free text like a request's purpose: line breaks are fine, escapes are not."""
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.sync()
    vm = next(v for v in inventory.list_vms().items if not v.is_template)
    inventory.set_metadata(vm.uuid, {"department": RED, "owner": "alice"})
    service = make_service()
    if accepted:
        asked = service.request_extension(vm.uuid, 5, reason, ALICE)
        assert asked.state is S.pending
    else:
        with pytest.raises(ValidationError, match="control or invalid character"):
            service.request_extension(vm.uuid, 5, reason, ALICE)
