"""VM requests: draft, quote, submit, approve, deny, cancel, expire; the hand-off onwards.

A request asks for ``count`` VMs of one size from a template, for an owner, a department, a
purpose, an environment and a lease. Before it is sent it shows its quote: the monthly cost
from the cost model, where the placement engine would put each VM (with the N+K reserve kept)
and which quota limits it would exceed. Submitting evaluates the approval rules
(``corral.engines.approval``): approved at once, pending for approvers (who are e-mailed a
link), or denied with one reason per unmet rule. Every decision records who, what and when
(``request_decisions``) and, like every write, lands in the audit log.

Decisions that book capacity run one at a time (``quotas.lock_decisions``): quota usage and
reservations are read and written under the lock, so concurrent requests never exceed a quota
and never book the same capacity twice. Within a process they queue before it, holding no
database connection (``quotas.decision_session``), so a burst of submits never drains the
connection pool. An approved request holds its capacity until the
provisioner reports (``mark_provisioned`` / ``mark_failed``) or it expires.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from email.utils import make_msgid

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from corral.domain.access import Permission, Principal, Role
from corral.domain.blueprint import Part
from corral.domain.requests import FINAL, RESERVING, TRANSITIONS, RequestState, Size
from corral.domain.text import check_text
from corral.engines.approval import (
    Amounts,
    ApprovalRules,
    Booked,
    CapacityVerdict,
    Decision,
    Evaluation,
    Facts,
    QuotaBreach,
    Reason,
    Slot,
    check_quota,
    evaluate,
    place_new_vms,
)
from corral.engines.planning.model import VM, Fleet
from corral.engines.planning.state import ClusterState
from corral.errors import (
    ConflictError,
    CorralError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from corral.notify.mailer import Mail, Mailer, MailError, is_address
from corral.services.policy import RequestFacts
from corral.services.quotas import (
    Prices,
    decision_session,
    department_usage,
    limits_of,
    lock_decisions,
)
from corral.services.users import check_department
from corral.store import models as m
from corral.store.db import Database

log = logging.getLogger(__name__)
S = RequestState
MAX_COUNT = 100
EXTENSION = "extension"
#: Writes a VM's new lease end (its ``expires_on`` metadata): (uuid, new end, who approved).
ExtendLease = Callable[[str, date, str], None]


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """What a requester asks for; every field is required."""

    template: str
    count: int
    size: Size
    owner: str
    department: str
    purpose: str
    environment: str
    lease_days: int
    #: a blueprint's name: its tiers are the VMs (``template``, ``count``, ``size`` unused)
    blueprint: str | None = None


@dataclass(frozen=True, slots=True)
class Quote:
    """What a request costs, where it would go and what stands in its way, before it is sent."""

    monthly_cost: float
    per_vm_cost: float
    currency: str
    capacity: CapacityVerdict
    quota: tuple[QuotaBreach, ...]
    evaluation: Evaluation


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    at: datetime
    actor: str
    action: str
    note: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class RequestView:
    id: int
    kind: str  # "vms", or "extension": ``spec.lease_days`` more for the VM ``vm_uuid``
    vm_uuid: str | None
    state: RequestState
    requester: str
    spec: RequestSpec
    monthly_cost: float
    currency: str
    approvals_needed: int
    approvers: tuple[str, ...]
    reasons: tuple[Reason, ...]
    placement: tuple[Slot, ...]
    capacity_status: str
    ha_host: str | None
    failure_reason: str | None
    provisioned_vms: tuple[str, ...]
    created_at: datetime
    submitted_at: datetime | None
    updated_at: datetime
    decisions: tuple[DecisionRecord, ...]
    #: what the request makes, in provision order (one part for a template request)
    parts: tuple[Part, ...] = ()


class RequestService:
    """The request workflow up to ``approved`` with a reservation; the provisioner goes on."""

    def __init__(
        self,
        db: Database,
        rules: ApprovalRules,
        prices: Prices,
        fleet: Callable[[], Fleet],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        mailer: Mailer | None = None,
        base_url: str | None = None,
        mail_domain: str | None = None,
        extend_lease: ExtendLease | None = None,
        blueprints: Callable[[str], tuple[Part, ...]] | None = None,
        policy: Callable[[RequestFacts], None] | None = None,
    ) -> None:
        self.db = db
        self.blueprints = blueprints
        #: the governance policy's check (corral.services.policy): raises on a broken rule
        self.policy = policy
        self.extend_lease = extend_lease
        self.rules = rules
        self.prices = prices
        self.fleet = fleet
        self.clock = clock
        self.mailer = mailer
        self.base_url = (base_url or "http://127.0.0.1:8000").rstrip("/")
        self.mail_domain = mail_domain
        self._base: tuple[Fleet, ClusterState] | None = None
        self._base_lock = threading.Lock()

    # --- reading --------------------------------------------------------------------------

    def get(self, request_id: int, who: Principal) -> RequestView:
        with self.db.session() as s:
            return _view(s, self._visible(s, request_id, who, Permission.request_read))

    def listing(
        self,
        who: Principal,
        *,
        state: RequestState | None = None,
        before: int | None = None,
        limit: int = 200,
        mine: bool = False,
    ) -> list[RequestView]:
        """The requests of the caller's departments (every one for a fleet-wide reader),
        newest first; ``before`` an id: only older ones (the next page); ``mine``: only those
        the caller asked for or owns."""
        seen = who.visible_departments(Permission.request_read)
        q = select(m.VMRequest).order_by(m.VMRequest.id.desc()).limit(limit)
        if mine:
            q = q.where((m.VMRequest.requester == who.user) | (m.VMRequest.owner == who.user))
        if before is not None:
            q = q.where(m.VMRequest.id < before)
        if seen is not None:
            q = q.where(m.VMRequest.department.in_(sorted(seen)))
        if state is not None:
            q = q.where(m.VMRequest.state == state.value)
        with self.db.session() as s:
            return [_view(s, r) for r in s.scalars(q)]

    def waiting_for(self, who: Principal, limit: int = 200) -> list[RequestView]:
        """The pending requests ``who`` may decide, oldest first: of the departments they
        decide for, neither asked for nor owned by them, not yet approved by them."""
        seen = who.visible_departments(Permission.request_decide)
        if who.reach(Permission.request_decide) is None or seen == frozenset():
            return []
        r = m.VMRequest
        mine = select(m.RequestDecision.request_id).where(
            m.RequestDecision.actor == who.user, m.RequestDecision.action == "approve"
        )
        q = (
            select(r)
            .where(r.state == S.pending.value, r.requester != who.user, r.owner != who.user)
            .where(r.id.not_in(mine))
            .order_by(r.id)
            .limit(limit)
        )
        if seen is not None:
            q = q.where(r.department.in_(sorted(seen)))
        with self.db.session() as s:
            return [_view(s, row) for row in s.scalars(q)]

    def department_of(self, request_id: int) -> str | None:
        """The department of a request (None when there is no such request)."""
        with self.db.session() as s:
            return s.scalar(select(m.VMRequest.department).where(m.VMRequest.id == request_id))

    # --- the requester's steps ------------------------------------------------------------

    def quote(self, spec: RequestSpec, who: Principal) -> Quote:
        """Cost, placement and quota of ``spec`` now, without booking anything."""
        spec, parts = self._check(spec, who)
        base = self.base_state()
        with self.db.session() as s:
            return self._quote(s, spec.department, spec.environment, parts, frozenset(), base)

    def create(self, spec: RequestSpec, who: Principal, *, submit: bool = False) -> RequestView:
        """A draft request (submitted at once with ``submit``)."""
        spec, parts = self._check(spec, who)
        now = self.clock()
        cost = self._cost(parts)
        blueprint = spec.blueprint is not None
        with self.db.session() as s:
            row = m.VMRequest(
                requester=who.user,
                owner=spec.owner,
                department=spec.department,
                purpose=spec.purpose,
                environment=spec.environment,
                template=spec.blueprint if spec.blueprint is not None else spec.template,
                count=sum(p.count for p in parts),
                vcpus=sum(p.count * p.size.vcpus for p in parts) if blueprint else spec.size.vcpus,
                memory_mib=(
                    sum(p.count * p.size.memory_mib for p in parts)
                    if blueprint
                    else spec.size.memory_mib
                ),
                disk_gb=sum(p.count * p.size.disk_gb for p in parts)
                if blueprint
                else spec.size.disk_gb,
                blueprint=spec.blueprint,
                tiers=[_part_json(p) for p in parts] if blueprint else [],
                lease_days=spec.lease_days,
                monthly_cost=round(cost, 2),
                currency=self.prices.currency,
                state=S.draft.value,
                approvals_needed=1,
                reasons=[],
                placement=[],
                capacity_status="",
                provisioned_vms=[],
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            _record(s, row, who.user, "create", now)
            request_id = row.id
        return self.submit(request_id, who) if submit else self.get(request_id, who)

    def submit(self, request_id: int, who: Principal) -> RequestView:
        """Send a draft: the rules approve it, deny it, or leave it to the approvers."""
        base = self.base_state()  # before the lock: it may read the inventory on a connection
        with decision_session(self.db) as s:
            row = self._visible(s, request_id, who, Permission.request_create)
            _must_be(row, S.draft, "submitted")
            lock_decisions(s, row.department)
            s.refresh(row)
            _must_be(row, S.draft, "submitted")
            now = self.clock()
            row.submitted_at = now
            evaluation = self._decide(s, row, frozenset(), who.user, "submit", now, base=base)
            view = _view(s, row)
        if evaluation.decision is Decision.pending:
            self._mail_approvers(view)
        return view

    def cancel(self, request_id: int, who: Principal, note: str = "") -> RequestView:
        """Withdraw a request that is not provisioned yet; its reservation is released."""
        with self.db.session() as s:
            row = self._visible(s, request_id, who, Permission.request_create)
            _move(s, row, S.cancelled, who.user, "cancel", self.clock(), note)
            return _view(s, row)

    def request_extension(
        self, vm_uuid: str, days: int, reason: str, who: Principal
    ) -> RequestView:
        """Ask for ``days`` more lease for a VM: a request an approver of its department
        decides (never automatically, never by the asker or the VM's owner)."""
        if not 1 <= days <= self.rules.max_lease_days:
            raise ValidationError(f"an extension is 1 to {self.rules.max_lease_days} days.")
        if not reason.strip():
            raise ValidationError("say why the lease should be longer (a reason).")
        check_text(reason, "the reason", multiline=True)
        now = self.clock()
        with self.db.session() as s:
            vm = s.get(m.VM, vm_uuid)
            if (
                vm is None
                or vm.deleted_at is not None
                or not vm.department
                or not who.sees(Permission.request_read, vm.department)
            ):
                raise NotFoundError(f"no VM {vm_uuid} among those you may see.")
            if not who.sees(Permission.request_create, vm.department):
                raise ForbiddenError(f"user {who.user!r} may not request extensions here.")
            why = (
                Reason(
                    "extension", f"a lease extension is decided by an approver of {vm.department}"
                ),
                Reason("approvals", "0 of 1 distinct approvals so far"),
            )
            row = m.VMRequest(
                kind=EXTENSION,
                vm_uuid=vm.uuid,
                requester=who.user,
                owner=vm.owner or who.user,
                department=vm.department,
                purpose=reason.strip(),
                environment=vm.environment or "",
                template=vm.name,
                count=0,
                vcpus=0,
                memory_mib=0,
                disk_gb=0.0,
                lease_days=days,
                monthly_cost=0.0,
                currency=self.prices.currency,
                state=S.pending.value,
                approvals_needed=1,
                reasons=[{"rule": r.rule, "text": r.text} for r in why],
                placement=[],
                capacity_status="",
                provisioned_vms=[],
                created_at=now,
                submitted_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            _record(s, row, who.user, "create", now)
            _record(s, row, who.user, "submit", now, reasons=why)
            view = _view(s, row)
        self._mail_approvers(view)
        return view

    def _approve_extension(self, request_id: int, who: Principal, note: str) -> RequestView:
        """Approve (one approver suffices), write the VM's new lease end, record it.

        The approval commits first, under the request's row lock, so two approvers never both
        extend; a lease that cannot be written leaves the request failed with the reason.
        """
        if self.extend_lease is None:
            raise ConflictError("this server cannot write leases; approve it where it can.")
        with self.db.session() as s:
            row = s.get(m.VMRequest, request_id, with_for_update=True)
            if row is None or row.vm_uuid is None:
                raise NotFoundError(f"no lease extension {request_id}.")
            _must_be(row, S.pending, "approved")
            vm = s.get(m.VM, row.vm_uuid)
            if vm is None or vm.deleted_at is not None:
                raise ConflictError(f"the VM of request {row.id} no longer exists; deny it.")
            now = self.clock()
            until = max(vm.expires_on or now.date(), now.date()) + timedelta(days=row.lease_days)
            row.reasons = []
            _move(s, row, S.approved, who.user, "approve", now, note)
            uuid = row.vm_uuid
        try:
            self.extend_lease(uuid, until, who.user)
        except CorralError as exc:
            with self.db.session() as s:
                row = _find(s, request_id)
                row.failure_reason = exc.message
                _move(s, row, S.failed, who.user, "failed", self.clock(), exc.message)
            raise
        with self.db.session() as s:
            row = _find(s, request_id)
            _move(s, row, S.provisioned, who.user, "extended", self.clock(), f"lease ends {until}")
            return _view(s, row)

    # --- the approver's steps -------------------------------------------------------------

    def approve(self, request_id: int, who: Principal, note: str = "") -> RequestView:
        """Add ``who``'s approval; the request is approved once the rules have enough."""
        with self.db.session() as s:
            row = self._visible(s, request_id, who, Permission.request_decide)
            self._may_decide(row, who)
            _must_be(row, S.pending, "approved")
            extension = row.kind == EXTENSION
        if extension:  # books no capacity: no decision lock while its lease is written
            return self._approve_extension(request_id, who, note)
        base = self.base_state()  # before the lock: it may read the inventory on a connection
        with decision_session(self.db) as s:
            row = self._visible(s, request_id, who, Permission.request_decide)
            lock_decisions(s, row.department)
            s.refresh(row)
            _must_be(row, S.pending, "approved")
            approvers = _approvers(s, row.id)
            if who.user in approvers:
                raise ConflictError(
                    f"{who.user} has already approved request {row.id}; it needs another approver."
                )
            now = self.clock()
            self._decide(
                s,
                row,
                approvers | {who.user},
                who.user,
                "approve",
                now,
                note=note,
                blocked_is_conflict=True,
                base=base,
            )
            return _view(s, row)

    def deny(self, request_id: int, who: Principal, note: str) -> RequestView:
        """Refuse a pending request, saying why (final)."""
        if not note.strip():
            raise ValidationError("say why the request is denied (a note).")
        with self.db.session() as s:
            row = self._visible(s, request_id, who, Permission.request_decide)
            self._may_decide(row, who)
            _must_be(row, S.pending, "denied")
            row.reasons = [{"rule": "approver", "text": note.strip()}]
            _move(s, row, S.denied, who.user, "deny", self.clock(), note.strip())
            return _view(s, row)

    def expire(self, actor: str = "corral") -> list[int]:
        """Expire requests unanswered for ``pending_days`` and approved ones not provisioned
        within ``approved_days`` (their capacity is released). Returns the expired ids."""
        now = self.clock()
        rules = self.rules.expire
        done = []
        with self.db.session() as s:
            stale = s.scalars(
                select(m.VMRequest).where(
                    (
                        (m.VMRequest.state == S.pending.value)
                        & (m.VMRequest.submitted_at < now - timedelta(days=rules.pending_days))
                    )
                    | (
                        (m.VMRequest.state == S.approved.value)
                        & (m.VMRequest.updated_at < now - timedelta(days=rules.approved_days))
                    )
                )
            ).all()
            for row in stale:
                days = rules.pending_days if row.state == S.pending.value else rules.approved_days
                _move(
                    s,
                    row,
                    S.expired,
                    actor,
                    "expire",
                    now,
                    f"no decision or provisioning within {days} days",
                )
                done.append(row.id)
        return done

    # --- the provisioner's hand-off -------------------------------------------------------

    def mark_provisioning(self, request_id: int, actor: str) -> RequestView:
        """The provisioner has started on an approved request (its reservation is kept)."""
        with self.db.session() as s:
            row = _find(s, request_id)
            _move(s, row, S.provisioning, actor, "provisioning", self.clock())
            return _view(s, row)

    def mark_provisioned(self, request_id: int, actor: str, vms: Sequence[str]) -> RequestView:
        """The VMs exist (``vms``: their UUIDs); the reservation is released (final)."""
        with self.db.session() as s:
            row = _find(s, request_id)
            row.provisioned_vms = list(vms)
            _move(s, row, S.provisioned, actor, "provisioned", self.clock(), ", ".join(vms))
            return _view(s, row)

    def mark_failed(self, request_id: int, actor: str, reason: str) -> RequestView:
        """Provisioning failed and was rolled back: the reservation is released (final)."""
        with self.db.session() as s:
            row = _find(s, request_id)
            row.failure_reason = reason
            _move(s, row, S.failed, actor, "failed", self.clock(), reason)
            return _view(s, row)

    # --- inside ---------------------------------------------------------------------------

    def _check(self, spec: RequestSpec, who: Principal) -> tuple[RequestSpec, tuple[Part, ...]]:
        """The spec, checked, and what it makes (a blueprint's tiers, or one part)."""
        if spec.blueprint is not None:
            if self.blueprints is None:
                raise ValidationError("this server has no blueprint catalog; request templates.")
            try:
                parts = self.blueprints(spec.blueprint)
            except NotFoundError as exc:  # a name in the body: bad input, not a missing page
                raise ValidationError(exc.message) from None
            spec = replace(spec, template=spec.blueprint, count=1, size=Size(1, 1, 0.0))
            self._check_fields(spec, who)
            if sum(p.count for p in parts) > MAX_COUNT:
                raise ValidationError(f"a request asks for 1 to {MAX_COUNT} VMs.")
            return spec, self._check_policy(spec, parts, blueprint=True)
        self._check_fields(spec, who)
        parts = (Part("", spec.template, spec.count, spec.size),)
        return spec, self._check_policy(spec, parts, blueprint=False)

    def _check_policy(
        self, spec: RequestSpec, parts: tuple[Part, ...], *, blueprint: bool
    ) -> tuple[Part, ...]:
        """A request that breaks the governance policy is refused, naming each rule."""
        if self.policy is not None:
            self.policy(
                RequestFacts(
                    spec.owner,
                    spec.department,
                    spec.purpose,
                    spec.environment,
                    spec.lease_days,
                    parts,
                    blueprint,
                )
            )
        return parts

    def _check_fields(self, spec: RequestSpec, who: Principal) -> None:
        department = check_department(spec.department)
        if not who.sees(Permission.request_create, department):
            raise ForbiddenError(
                f"user {who.user!r} may request VMs only for their departments "
                f"({', '.join(sorted(who.departments)) or 'none'})."
            )
        for name in ("template", "owner", "purpose", "environment"):
            value = getattr(spec, name)
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(f"a request needs a {name} (printable text).")
            check_text(value, f"the {name}")
        if spec.environment not in self.rules.environments:
            raise ValidationError(
                f"environment {spec.environment!r} is unknown; use one of "
                f"{', '.join(self.rules.environments)}."
            )
        if not 1 <= spec.count <= MAX_COUNT:
            raise ValidationError(f"a request asks for 1 to {MAX_COUNT} VMs.")
        if spec.size.vcpus < 1 or spec.size.memory_mib < 1 or spec.size.disk_gb < 0:
            raise ValidationError("each VM needs at least 1 vCPU, 1 MiB and 0 GB of disk.")
        if not 1 <= spec.lease_days <= self.rules.max_lease_days:
            raise ValidationError(
                f"the lease is 1 to {self.rules.max_lease_days} days (the rules' maximum)."
            )

    def _visible(
        self, s: Session, request_id: int, who: Principal, permission: Permission
    ) -> m.VMRequest:
        row = s.get(m.VMRequest, request_id)
        if row is None or not who.sees(Permission.request_read, row.department):
            raise NotFoundError(f"no request {request_id} among those you may see.")
        if not who.sees(permission, row.department):
            raise ForbiddenError(f"user {who.user!r} may not {permission.value} here.")
        return row

    def _may_decide(self, row: m.VMRequest, who: Principal) -> None:
        if who.user in (row.requester, row.owner):
            raise ForbiddenError(
                f"an approver never decides their own request: {who.user} asked for or owns "
                f"request {row.id}; another approver of {row.department} must."
            )

    def base_state(self) -> ClusterState:
        """The fleet as it runs, as the placement engine's state (updated when it changes)."""
        fleet = self.fleet()
        with self._base_lock:
            if self._base is None:
                self._base = (fleet, ClusterState.from_fleet(fleet))
            elif self._base[0] is not fleet:  # from the last one: only changed hosts' VMs
                self._base = (fleet, self._base[1].rebased(fleet))
            return self._base[1]

    def _cost(self, parts: Sequence[Part]) -> float:
        return sum(self.prices.of_request(p.count, p.size) for p in parts)

    def _quote(
        self,
        s: Session,
        department: str,
        environment: str,
        parts: Sequence[Part],
        approvers: frozenset[str],
        base: ClusterState,
    ) -> Quote:
        r = m.RequestReservation
        booked = [
            Booked(host, float(vcpus), float(mib))
            for host, vcpus, mib in s.execute(
                select(r.host, func.sum(r.vcpus), func.sum(r.memory_mib)).group_by(r.host)
            )
        ]
        vms = [
            VM(f"{p.tier or p.template}-{i + 1}", p.size.vcpus, p.size.memory_mib)
            for p in parts
            for i in range(p.count)
        ]
        capacity = place_new_vms(base, booked, vms, failures=self.rules.ha_failures)
        cost = self._cost(parts)
        used = department_usage(s, department, self.prices)
        limits = limits_of(s.get(m.Quota, department))
        adds = Amounts()
        for p in parts:
            adds = adds + Amounts.of_request(
                p.count, p.size, self.prices.of_request(p.count, p.size)
            )
        breaches = check_quota(limits, used, adds)
        facts = Facts(environment, cost, self.prices.currency, breaches, capacity, approvers)
        return Quote(
            monthly_cost=round(cost, 2),
            per_vm_cost=round(cost / max(len(vms), 1), 2),
            currency=self.prices.currency,
            capacity=capacity,
            quota=breaches,
            evaluation=evaluate(self.rules, facts),
        )

    def _decide(
        self,
        s: Session,
        row: m.VMRequest,
        approvers: frozenset[str],
        actor: str,
        action: str,
        now: datetime,
        *,
        note: str = "",
        blocked_is_conflict: bool = False,
        base: ClusterState,
    ) -> Evaluation:
        """Evaluate under the lock and move the request; an approval books its capacity."""
        parts = parts_of(row)
        quote = self._quote(s, row.department, row.environment, parts, approvers, base)
        ev = quote.evaluation
        if ev.decision is Decision.deny and blocked_is_conflict:
            raise ConflictError(
                f"request {row.id} cannot be approved now: "
                + "; ".join(r.text for r in ev.reasons)
                + ". Deny it, or wait until capacity or quota is freed."
            )
        row.monthly_cost = quote.monthly_cost
        row.approvals_needed = ev.approvals_needed
        row.reasons = [{"rule": r.rule, "text": r.text} for r in ev.reasons]
        row.placement = [{"vm": x.vm, "host": x.host} for x in quote.capacity.slots]
        row.capacity_status = quote.capacity.status.value
        row.ha_host = quote.capacity.ha_host
        reasons = tuple(ev.reasons)
        if ev.decision is Decision.approve:
            disks = [p.size.disk_gb for p in parts for _ in range(p.count)]
            for slot, disk_gb in zip(quote.capacity.slots, disks, strict=False):
                s.add(
                    m.RequestReservation(
                        request_id=row.id,
                        host=slot.host,
                        vm=slot.vm,
                        vcpus=slot.vcpus,
                        memory_mib=slot.memory_mib,
                        disk_gb=disk_gb,
                    )
                )
            _move(s, row, S.approved, actor, action, now, note, reasons)
        elif ev.decision is Decision.deny:
            _move(s, row, S.denied, actor, action, now, note, reasons)
        else:
            if row.state != S.pending.value:
                _move(s, row, S.pending, actor, action, now, note, reasons)
            else:
                _record(s, row, actor, action, now, note, reasons)
        return ev

    def _mail_approvers(self, view: RequestView) -> list[str]:
        """E-mail the department's approvers a link to the request; the addresses reached."""
        if self.mailer is None:
            return []
        with self.db.session() as s:
            users = (
                s.scalars(
                    select(m.User)
                    .join(m.UserRole)
                    .join(m.UserDepartment)
                    .where(
                        m.UserRole.role == Role.approver.value,
                        m.UserDepartment.department == view.spec.department,
                        m.User.disabled_at.is_(None),
                    )
                )
                .unique()
                .all()
            )
            addresses = sorted(
                {
                    a
                    for u in users
                    if (a := self._address(u)) and u.name not in (view.requester, view.spec.owner)
                }
            )
        if not addresses:
            log.warning(
                "request %s: no approver of %s has an e-mail address", view.id, view.spec.department
            )
        sent = []
        for to in addresses:
            try:
                self.mailer.send(_approval_mail(view, to, self.base_url, self.clock()))
                sent.append(to)
            except MailError as exc:
                log.warning("request %s: %s", view.id, exc.message)
        return sent

    def _address(self, user: m.User) -> str | None:
        if user.email and is_address(user.email):
            return user.email
        if self.mail_domain and is_address(f"{user.name}@{self.mail_domain}"):
            return f"{user.name}@{self.mail_domain}"
        return None


def _approval_mail(view: RequestView, to: str, base_url: str, now: datetime) -> Mail:
    spec = view.spec
    link = f"{base_url}/api/v1/requests/{view.id}"
    why = "\n".join(f"  - {r.text}" for r in view.reasons)
    where = ", ".join(f"{x.vm} on {x.host}" for x in view.placement) or "no host"
    asks = (
        f"{view.requester} asks for {spec.lease_days} more days of lease for VM "
        f"{spec.template} ({view.vm_uuid}) of {spec.department}.\n\n"
        if view.kind == EXTENSION
        else f"{view.requester} asks for {spec.count} x {spec.template} "
        f"({spec.size.vcpus} vCPUs, {spec.size.memory_mib} MiB, {spec.size.disk_gb:g} GB) "
        f"for {spec.department}.\n\n"
    )
    text = asks + (
        f"Owner: {spec.owner}\nPurpose: {spec.purpose}\nEnvironment: {spec.environment}\n"
        f"Lease: {spec.lease_days} days\n"
        f"Monthly cost: {view.monthly_cost:,.2f} {view.currency}\n"
        f"Placement: {where} ({view.capacity_status})\n\n"
        f"Waiting for:\n{why}\n\n"
        f"Review it: {link}\n"
        f"Approve: corral request approve {view.id}   (or POST {link}/approve)\n"
        f"Deny:    corral request deny {view.id} --note WHY   (or POST {link}/deny)\n"
    )
    return Mail(
        to=to,
        subject=f"[corral] request {view.id}: "
        + (
            f"lease of {spec.template}"
            if view.kind == EXTENSION
            else f"{spec.count} x {spec.template}"
        )
        + f" for {spec.department}",
        text=text,
        message_id=make_msgid(domain="corral"),
        date=now,
        headers={"X-Corral-Request": str(view.id)},
    )


def move_request(
    s: Session,
    row: m.VMRequest,
    to: RequestState,
    actor: str,
    action: str,
    now: datetime,
    note: str = "",
) -> None:
    """Move a request inside the caller's transaction (the provisioner's claim and commit):
    the same life-cycle check, reservation release and decision record as every move."""
    _move(s, row, to, actor, action, now, note)


def request_view(s: Session, row: m.VMRequest) -> RequestView:
    return _view(s, row)


def _find(s: Session, request_id: int) -> m.VMRequest:
    row = s.get(m.VMRequest, request_id)
    if row is None:
        raise NotFoundError(f"no request {request_id}; see 'corral request list'.")
    return row


def _must_be(row: m.VMRequest, state: RequestState, what: str) -> None:
    if row.state != state.value:
        raise ConflictError(
            f"request {row.id} is {row.state}; only a {state.value} one can be {what}."
        )


def _move(
    s: Session,
    row: m.VMRequest,
    to: RequestState,
    actor: str,
    action: str,
    now: datetime,
    note: str = "",
    reasons: tuple[Reason, ...] = (),
) -> None:
    """Move ``row`` to ``to`` if the life cycle allows it, recording who, what and when."""
    here = RequestState(row.state)
    if to not in TRANSITIONS[here]:
        final = " (final)" if here in FINAL else ""
        raise ConflictError(
            f"request {row.id} is {here.value}{final}; it cannot become {to.value}."
        )
    if here in RESERVING and to not in RESERVING:
        s.execute(delete(m.RequestReservation).where(m.RequestReservation.request_id == row.id))
    row.state = to.value
    row.updated_at = now
    _record(s, row, actor, action, now, note, reasons)


def _record(
    s: Session,
    row: m.VMRequest,
    actor: str,
    action: str,
    now: datetime,
    note: str = "",
    reasons: tuple[Reason, ...] = (),
) -> None:
    s.add(
        m.RequestDecision(
            request_id=row.id,
            at=now,
            actor=actor,
            action=action,
            note=note,
            reasons=[{"rule": r.rule, "text": r.text} for r in reasons],
        )
    )


def _approvers(s: Session, request_id: int) -> frozenset[str]:
    return frozenset(
        s.scalars(
            select(m.RequestDecision.actor).where(
                m.RequestDecision.request_id == request_id, m.RequestDecision.action == "approve"
            )
        )
    )


def _part_json(p: Part) -> dict[str, object]:
    return {
        "tier": p.tier,
        "template": p.template,
        "count": p.count,
        "vcpus": p.size.vcpus,
        "memory_mib": p.size.memory_mib,
        "disk_gb": p.size.disk_gb,
        "start_delay_s": p.start_delay_s,
        "networks": list(p.networks),
    }


def parts_of(row: m.VMRequest) -> tuple[Part, ...]:
    """What a stored request makes, in provision order: its blueprint's tiers as requested,
    or its template's ``count`` VMs."""
    if row.blueprint:
        return tuple(
            Part(
                t["tier"],
                t["template"],
                t["count"],
                Size(t["vcpus"], t["memory_mib"], t["disk_gb"]),
                t["start_delay_s"],
                tuple(t.get("networks") or ()),
            )
            for t in row.tiers
        )
    return (Part("", row.template, row.count, Size(row.vcpus, row.memory_mib, row.disk_gb)),)


def _spec(row: m.VMRequest) -> RequestSpec:
    return RequestSpec(
        template=row.template,
        count=row.count,
        size=Size(row.vcpus, row.memory_mib, row.disk_gb),
        owner=row.owner,
        department=row.department,
        purpose=row.purpose,
        environment=row.environment,
        lease_days=row.lease_days,
        blueprint=row.blueprint,
    )


def _view(s: Session, row: m.VMRequest) -> RequestView:
    decisions = s.scalars(
        select(m.RequestDecision)
        .where(m.RequestDecision.request_id == row.id)
        .order_by(m.RequestDecision.id)
    ).all()
    return RequestView(
        id=row.id,
        kind=row.kind,
        vm_uuid=row.vm_uuid,
        state=RequestState(row.state),
        requester=row.requester,
        spec=_spec(row),
        monthly_cost=row.monthly_cost,
        currency=row.currency,
        approvals_needed=row.approvals_needed,
        approvers=tuple(sorted({d.actor for d in decisions if d.action == "approve"})),
        reasons=tuple(Reason(r["rule"], r["text"]) for r in row.reasons),
        placement=tuple(Slot(x["vm"], x["host"], row.vcpus, row.memory_mib) for x in row.placement),
        capacity_status=row.capacity_status,
        ha_host=row.ha_host,
        failure_reason=row.failure_reason,
        provisioned_vms=tuple(row.provisioned_vms),
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        updated_at=row.updated_at,
        decisions=tuple(
            DecisionRecord(
                d.at,
                d.actor,
                d.action,
                d.note,
                tuple(Reason(r["rule"], r["text"]) for r in d.reasons),
            )
            for d in decisions
        ),
        parts=parts_of(row),
    )
