"""Department quotas: set and read them, and what a department uses against them.

Usage is what the department runs (its VMs in the inventory, templates and deleted VMs left
out) plus what is approved and not yet provisioned (requests holding a reservation). Cost is
priced with the cost model's rates for a VM of that size (no OS licences: a template's
licences are not known before it is provisioned).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, true, update
from sqlalchemy.orm import Session

from corral.domain.access import Permission, Principal
from corral.domain.requests import RESERVING, QuotaDimension, Size
from corral.engines.approval import Amounts, Limits
from corral.engines.costing import CostModel, price_vm
from corral.errors import ForbiddenError, NotFoundError, ValidationError
from corral.services.users import check_department
from corral.store import models as m
from corral.store.db import Database

GIB = 1024**3
FLEET_LOCK = "fleet"

# Limits and Amounts are re-exported: interfaces import services, not engines.
__all__ = [
    "Amounts",
    "Limits",
    "Prices",
    "QuotaService",
    "QuotaView",
    "decision_session",
    "department_usage",
    "limits_of",
    "lock_decisions",
]


class _Queue:
    """A first-come, first-served gate letting ``width`` threads through at a time (a ticket
    each), re-entrant for a thread already through: deciders reach the database's lock in the
    order they came, and the next ones already wait there with their connection, so the lock
    passes on at once. An interrupted waiter's ticket is passed over."""

    def __init__(self, width: int) -> None:
        self._cond = threading.Condition()
        self._width = width
        self._issued = 0
        self._admit = 0  # the next ticket to let through
        self._inside: dict[int, int] = {}  # thread -> depth
        self._abandoned: set[int] = set()

    def __enter__(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if me in self._inside:
                self._inside[me] += 1
                return
            ticket = self._issued
            self._issued += 1
            try:
                while ticket != self._admit or len(self._inside) >= self._width:
                    self._cond.wait()
            except BaseException:
                self._abandoned.add(ticket)
                self._skip()
                raise
            self._inside[me] = 1
            self._admit += 1
            self._skip()

    def __exit__(self, *_exc: object) -> None:
        me = threading.get_ident()
        with self._cond:
            self._inside[me] -= 1
            if not self._inside[me]:
                del self._inside[me]
                self._cond.notify_all()

    def _skip(self) -> None:
        while self._admit in self._abandoned:
            self._abandoned.discard(self._admit)
            self._admit += 1
        self._cond.notify_all()


#: Deciders of this process let on to the database's lock at a time (see decision_session):
#: the one deciding and two waiting there, well below the connection pool (15).
DECIDERS = 3
_DECIDING = _Queue(DECIDERS)


@dataclass(frozen=True, slots=True)
class _Priced:
    """A VM of a size, as the pricing engine reads it (``PricedVM``)."""

    uuid: str
    vcpus: int
    memory_mib: int
    disk_gb: float
    host: str | None = None
    snapshot_gb: float = 0.0
    os: str | None = None
    licences: tuple[str, ...] = ()
    powered_on: bool = True


@dataclass(frozen=True, slots=True)
class Prices:
    """Monthly cost of a VM as a linear function of its size under one cost model."""

    currency: str
    per_vm: float
    per_vcpu: float
    per_mib: float
    per_gb: float

    @classmethod
    def of(cls, model: CostModel) -> Prices:
        def total(vcpus: int, mib: int, gb: float) -> float:
            return price_vm(_Priced("quote", vcpus, mib, gb), model).total

        base = total(0, 0, 0)
        return cls(
            currency=model.currency,
            per_vm=base,
            per_vcpu=total(1, 0, 0) - base,
            per_mib=(total(0, 1024, 0) - base) / 1024,
            per_gb=total(0, 0, 1) - base,
        )

    def monthly(self, count: float, vcpus: float, memory_mib: float, disk_gb: float) -> float:
        """Cost of ``count`` VMs holding these totals of vCPUs, MiB and GB."""
        return (
            count * self.per_vm
            + vcpus * self.per_vcpu
            + memory_mib * self.per_mib
            + disk_gb * self.per_gb
        )

    def of_request(self, count: int, size: Size) -> float:
        return self.monthly(count, count * size.vcpus, count * size.memory_mib,
                            count * size.disk_gb)  # fmt: skip


@dataclass(frozen=True, slots=True)
class QuotaView:
    department: str
    limits: Limits
    used: Amounts
    currency: str
    updated_at: datetime | None = None
    updated_by: str | None = None


@contextmanager
def decision_session(db: Database) -> Iterator[Session]:
    """A session for a decision that takes :func:`lock_decisions`, opened only once this
    process's previous decision is done.

    Decisions run one at a time anyway (the lock in the database); without this, every
    concurrent decider would check a pooled connection out and hold it while it waits on
    that lock, and a burst of them (1,000 submits on a pool of 15) would leave the others
    waiting for a connection until the pool gave up. Here they queue holding no connection,
    in the order they came; at most :data:`DECIDERS` connections of a process are at the
    database's lock (one deciding, the next ones ready).
    """
    with _DECIDING, db.session() as s:
        yield s


def lock_decisions(s: Session, department: str) -> m.Quota | None:
    """Serialise every decision against quotas and capacity; the department's quota row.

    First the one ``capacity_locks`` row is updated (a row lock on PostgreSQL, the database
    write lock on SQLite, taken before anything is read), then the quota row is locked
    (SELECT ... FOR UPDATE). Always in this order, so two deciders never wait on each other.
    """
    s.execute(
        update(m.CapacityLock)
        .where(m.CapacityLock.name == FLEET_LOCK)
        .values(version=m.CapacityLock.version + 1)
    )
    return s.scalar(select(m.Quota).where(m.Quota.department == department).with_for_update())


def department_usage(s: Session, department: str, prices: Prices) -> Amounts:
    """What ``department`` runs plus what its approved, unprovisioned requests hold."""
    r = m.VMRequest
    run_q = (
        select(
            func.count().label("n"),
            func.coalesce(func.sum(m.VM.vcpus), 0).label("vcpus"),
            func.coalesce(func.sum(m.VM.memory_mib), 0).label("mib"),
            func.coalesce(func.sum(m.VM.disk_bytes), 0).label("bytes"),
        )
        .where(
            m.VM.department == department,
            m.VM.deleted_at.is_(None),
            m.VM.is_template.is_(False),
        )
        .subquery()
    )
    # What approved, unprovisioned requests hold is their reservations: one row per VM with
    # its size (a blueprint's tiers differ), booked and released with the request's state.
    b = m.RequestReservation
    holding = r.state.in_([st.value for st in RESERVING])
    held_q = (
        select(
            func.count(b.id).label("n"),
            func.coalesce(func.sum(b.vcpus), 0).label("vcpus"),
            func.coalesce(func.sum(b.memory_mib), 0).label("mib"),
            func.coalesce(func.sum(b.disk_gb), 0.0).label("gb"),
        )
        .join(r, r.id == b.request_id)
        .where(r.department == department, holding)
        .subquery()
    )
    cost_q = (
        select(func.coalesce(func.sum(r.monthly_cost), 0.0).label("cost"))
        .where(r.department == department, holding)
        .subquery()
    )
    both = run_q.join(held_q, true()).join(cost_q, true())  # one-row aggregates, one trip
    row = s.execute(select(run_q, held_q, cost_q).select_from(both)).one()
    vms, held = row[:4], row[4:]
    run_gb = float(vms[3]) / GIB
    running = Amounts(
        vcpus=float(vms[1]),
        memory_mib=float(vms[2]),
        storage_gb=run_gb,
        vms=float(vms[0]),
        monthly_cost=prices.monthly(float(vms[0]), float(vms[1]), float(vms[2]), run_gb),
    )
    return running + Amounts(
        vcpus=float(held[1]),
        memory_mib=float(held[2]),
        storage_gb=float(held[3]),
        vms=float(held[0]),
        monthly_cost=float(held[4]),  # cost_q's column follows held_q's four
    )


def limits_of(row: m.Quota | None) -> Limits:
    if row is None:
        return Limits()
    return Limits(*(getattr(row, d.value) for d in QuotaDimension))


class QuotaService:
    """Set and read department quotas (``quota.manage`` to set, ``request.read`` to read)."""

    def __init__(self, db: Database, prices: Prices, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.prices = prices
        self.clock = clock

    def set(self, department: str, limits: Limits, who: Principal) -> QuotaView:
        """Replace ``department``'s limits (None in a dimension: no limit there)."""
        department = check_department(department)
        if not who.sees(Permission.quota_manage, department):
            raise ForbiddenError(f"user {who.user!r} may not set quotas; ask an administrator.")
        for dim in QuotaDimension:
            value = limits.get(dim)
            if value is not None and value < 0:
                raise ValidationError(f"the {dim.value} limit must be 0 or more.")
        with decision_session(self.db) as s:
            row = lock_decisions(s, department)
            if row is None:
                row = m.Quota(department=department)
                s.add(row)
            for dim in QuotaDimension:
                setattr(row, dim.value, limits.get(dim))
            row.updated_at = self.clock()
            row.updated_by = who.user
            s.flush()
            return self._view(s, department, row)

    def get(self, department: str, who: Principal) -> QuotaView:
        department = check_department(department)
        if not who.sees(Permission.request_read, department):
            raise NotFoundError("no such department among those you may see.")
        with self.db.session() as s:
            row = s.get(m.Quota, department)
            return self._view(s, department, row)

    def all(self, who: Principal) -> list[QuotaView]:
        """Every quota the caller may see, by department."""
        seen = who.visible_departments(Permission.request_read)
        with self.db.session() as s:
            rows = s.scalars(select(m.Quota).order_by(m.Quota.department)).all()
            return [
                self._view(s, r.department, r) for r in rows if seen is None or r.department in seen
            ]

    def overview(self, who: Principal) -> list[QuotaView]:
        """Every department the caller may see that has a quota, runs VMs or holds an
        approved request, and the caller's own: usage against quota, by department."""
        seen = who.visible_departments(Permission.request_read)
        with self.db.session() as s:
            rows = {r.department: r for r in s.scalars(select(m.Quota))}
            running = s.scalars(
                select(m.VM.department)
                .where(m.VM.department.is_not(None), m.VM.deleted_at.is_(None))
                .group_by(m.VM.department)
            )
            holding = s.scalars(
                select(m.VMRequest.department)
                .where(m.VMRequest.state.in_([st.value for st in RESERVING]))
                .group_by(m.VMRequest.department)
            )
            found = {*rows, *(d for d in running if d), *holding, *who.departments}
            shown = sorted(d for d in found if seen is None or d in seen)
            return [self._view(s, d, rows.get(d)) for d in shown]

    def _view(self, s: Session, department: str, row: m.Quota | None) -> QuotaView:
        return QuotaView(
            department=department,
            limits=limits_of(row),
            used=department_usage(s, department, self.prices),
            currency=self.prices.currency,
            updated_at=row.updated_at if row else None,
            updated_by=row.updated_by if row else None,
        )
