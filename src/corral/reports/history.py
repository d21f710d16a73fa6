"""Waste over time: what each month end's fleet held in the categories its history can show.

Why only some categories: the events table records every VM's state changes,
metadata changes, creation and deletion for as long as Corral has watched the
fleet, so *powered off for N days*, *lease expired*, *orphaned disks* (the
disks of deleted VMs, or volumes never seen attached) and *no owner* can be
replayed at any past date. *Idle* needs metrics, which exist only for the
metrics retention, and snapshot sizes are not in the history; they are not in
this line. Each VM counts once per month end (waste before governance, then
the order of ``Category``), like the live analysis. VMs are priced at the size
they had then, with today's cost model and their current host and disks.

``waste_over_time`` is pure; ``load_histories`` reads the inventory into its input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from corral.engines.costing import CostModel, price_fleet
from corral.engines.sprawl.model import (
    CATEGORY_RANK,
    GOVERNANCE,
    Category,
    Disk,
    HostRecord,
    VMRecord,
    VMState,
)
from corral.inventory.service import Inventory
from corral.store import models as m

#: The categories this line can replay from the inventory's history (in ranking order).
HISTORY_CATEGORIES: tuple[Category, ...] = (
    Category.powered_off,
    Category.lease_expired,
    Category.orphaned_disk,
    Category.no_owner,
)

T = TypeVar("T")
GIB = 1024**3


@dataclass(frozen=True)
class Change(Generic[T]):
    """From ``at`` on, the attribute has ``value``."""

    at: datetime
    value: T


def value_at(changes: Sequence[Change[T]], when: datetime, default: T) -> T:
    """The value of a timeline (sorted by time) at ``when``; ``default`` before its first change."""
    current = default
    for c in changes:
        if c.at > when:
            break
        current = c.value
    return current


@dataclass(frozen=True)
class VMHistory:
    """One VM's life as the events table tells it.

    ``states`` holds the observed state changes, the first one at discovery;
    before it the VM's state is unknown and it is not counted. ``owners``,
    ``expiries``, ``vcpus`` and ``memory_mib`` start with the value the VM had
    at its first observation.
    """

    uuid: str
    name: str
    states: tuple[Change[VMState], ...]
    owners: tuple[Change[str | None], ...] = ()
    expiries: tuple[Change[datetime | None], ...] = ()
    vcpus: tuple[Change[int], ...] = ()
    memory_mib: tuple[Change[int], ...] = ()
    deleted_at: datetime | None = None
    host: str | None = None
    disks: tuple[Disk, ...] = ()
    department: str | None = None

    @property
    def first_seen(self) -> datetime | None:
        return self.states[0].at if self.states else None


@dataclass(frozen=True)
class OrphanedDisk:
    """A volume no VM uses, and since when it has been known to be unused."""

    path: str
    size_gb: float
    orphaned_since: datetime


@dataclass(frozen=True)
class HistoryParams:
    """Thresholds of the replayed detectors; the defaults match the live detectors'."""

    powered_off_days: float = 30.0  # continuously powered off at least this long
    lease_grace_days: float = 0.0  # days after expiry before it counts
    orphan_min_age_days: float = 7.0  # younger orphans may be mid-provisioning


@dataclass(frozen=True)
class MonthWaste:
    """What the fleet held at one month end, per category (each VM counted once)."""

    at: datetime
    vms: int
    counts: Mapping[Category, int] = field(default_factory=dict)
    monthly: Mapping[Category, float] = field(default_factory=dict)

    @property
    def waste(self) -> float:
        return sum(v for c, v in self.monthly.items() if c not in GOVERNANCE)

    @property
    def at_risk(self) -> float:
        return sum(v for c, v in self.monthly.items() if c in GOVERNANCE)


def month_ends(first: datetime, last: datetime) -> list[datetime]:
    """The last instant of every month from ``first``'s month to ``last``, then ``last`` itself.

    Month ends after ``last`` are left out: the final point is ``last`` (now).
    """
    out: list[datetime] = []
    year, month = first.year, first.month
    while True:
        nxt = date(year + month // 12, month % 12 + 1, 1)
        end = datetime.combine(nxt, datetime.min.time(), tzinfo=first.tzinfo) - timedelta(
            microseconds=1
        )
        if end >= last:
            break
        if end >= first:
            out.append(end)
        year, month = nxt.year, nxt.month
    return [*out, last]


def waste_over_time(
    vms: Sequence[VMHistory],
    orphans: Sequence[OrphanedDisk],
    when: Sequence[datetime],
    model: CostModel,
    params: HistoryParams | None = None,
    hosts: Sequence[HostRecord] = (),
) -> list[MonthWaste]:
    """The money held at each moment of ``when`` by the categories history can replay."""
    params = params or HistoryParams()
    return [_month(vms, orphans, t, model, params, hosts) for t in when]


def _month(
    vms: Sequence[VMHistory],
    orphans: Sequence[OrphanedDisk],
    t: datetime,
    model: CostModel,
    params: HistoryParams,
    hosts: Sequence[HostRecord],
) -> MonthWaste:
    alive = [(h, _record_at(h, t)) for h in vms if _alive(h, t)]
    costs = price_fleet([r for _, r in alive], hosts, model)
    counts: dict[Category, int] = {}
    monthly: dict[Category, float] = {}
    for h, rec in alive:
        cat = _category(h, rec, t, params)
        if cat is not None:
            counts[cat] = counts.get(cat, 0) + 1
            monthly[cat] = monthly.get(cat, 0.0) + costs[rec.uuid].total
    limit = t - timedelta(days=params.orphan_min_age_days)
    old = [o for o in orphans if o.orphaned_since <= limit]
    if old:
        counts[Category.orphaned_disk] = len(old)
        monthly[Category.orphaned_disk] = sum(
            o.size_gb * model.storage.price_per_gb_month for o in old
        )
    return MonthWaste(at=t, vms=len(alive), counts=counts, monthly=monthly)


def _alive(h: VMHistory, t: datetime) -> bool:
    first = h.first_seen
    return first is not None and first <= t and (h.deleted_at is None or h.deleted_at > t)


def _record_at(h: VMHistory, t: datetime) -> VMRecord:
    state = value_at(h.states, t, VMState.unknown)
    return VMRecord(
        uuid=h.uuid,
        name=h.name,
        host=h.host,
        state=state,
        vcpus=value_at(h.vcpus, t, 1),
        memory_mib=value_at(h.memory_mib, t, 1024),
        disks=h.disks,
        owner=value_at(h.owners, t, None),
        expiry=value_at(h.expiries, t, None),
        department=h.department,
        state_since=_state_since(h.states, t),
    )


def _state_since(states: Sequence[Change[VMState]], t: datetime) -> datetime | None:
    """When the state the VM had at ``t`` began (its first observation at the latest)."""
    since: datetime | None = None
    previous: VMState | None = None
    for c in states:
        if c.at > t:
            break
        if c.value is not previous:
            since, previous = c.at, c.value
    return since


def _category(h: VMHistory, rec: VMRecord, t: datetime, params: HistoryParams) -> Category | None:
    matched: list[Category] = []
    off = rec.state.known and rec.state not in (VMState.running, VMState.paused)
    off_long = timedelta(days=params.powered_off_days)
    if off and rec.state_since is not None and t - rec.state_since >= off_long:
        matched.append(Category.powered_off)
    if rec.expiry is not None and rec.expiry <= t - timedelta(days=params.lease_grace_days):
        matched.append(Category.lease_expired)
    if not (rec.owner or "").strip():
        matched.append(Category.no_owner)
    if not matched:
        return None
    return min(matched, key=lambda c: (c in GOVERNANCE, CATEGORY_RANK[c]))


# --- reading the inventory --------------------------------------------------------------------

#: The event kinds the replay reads (snapshots, migrations and the like do not change the line).
REPLAYED_EVENTS = (
    "created",
    "started",
    "stopped",
    "paused",
    "resumed",
    "resized",
    "metadata-changed",
)


def load_histories(inv: Inventory) -> tuple[list[VMHistory], list[OrphanedDisk]]:
    """Every non-template VM's history (deleted ones too) and every orphaned volume."""
    with inv.db.session() as s:
        host_names = {h.id: h.name for h in s.scalars(select(m.Host))}
        rows = list(
            s.scalars(
                select(m.VM)
                .options(undefer(m.VM.disks))  # one query, not one per VM
                .where(m.VM.is_template.is_(False))
            )
        )
        events: dict[str, list[m.Event]] = {}
        query = (
            select(m.Event)
            .where(m.Event.vm_uuid.is_not(None), m.Event.kind.in_(REPLAYED_EVENTS))
            .order_by(m.Event.at, m.Event.id)
        )
        for e in s.scalars(query):
            events.setdefault(e.vm_uuid or "", []).append(e)
        vms = [_history(r, host_names, events.get(r.uuid, [])) for r in rows]
        orphans = _orphans(s, rows)
    return vms, orphans


def _history(row: m.VM, host_names: Mapping[int, str], events: Sequence[m.Event]) -> VMHistory:
    first = events[0].at if events else row.first_seen_at
    expiry = _expiry(row.expires_on)
    return VMHistory(
        uuid=row.uuid,
        name=row.name,
        states=tuple(_states(row, events, first)),
        owners=_timeline(events, "owner", row.owner, first, _text),
        expiries=_timeline(events, "expires_on", expiry, first, _expiry_value),
        vcpus=_resized(events, "vcpus", row.vcpus, first),
        memory_mib=_resized(events, "memory_mib", row.memory_mib, first),
        deleted_at=row.deleted_at,
        host=host_names.get(row.host_id) if row.host_id is not None else None,
        disks=tuple(
            Disk(path=d["path"], size_gb=(d.get("capacity_bytes") or 0) / GIB)
            for d in row.disks or []
            if d.get("device") == "disk" and d.get("path")
        ),
        department=row.department,
    )


def _state(value: Any) -> VMState:
    text = str(value)
    return VMState(text) if text in VMState._value2member_map_ else VMState.unknown


def _states(row: m.VM, events: Sequence[m.Event], first: datetime) -> list[Change[VMState]]:
    """The VM's state timeline; without events, its current state since it was first seen."""
    out: list[Change[VMState]] = []
    for e in events:
        d = e.details or {}
        if e.kind == "created" and "state" in d:
            out.append(Change(e.at, _state(d["state"])))
        elif e.kind in ("started", "stopped", "paused", "resumed") and "to" in d:
            out.append(Change(e.at, _state(d["to"])))
    if not out:
        out.append(Change(min(first, row.state_since), _state(row.state)))
    return out


def _timeline(
    events: Sequence[m.Event], key: str, current: T, first: datetime, convert: Callable[[Any], T]
) -> tuple[Change[T], ...]:
    """A metadata attribute's timeline from metadata-changed events ({key: {from, to}})."""
    changes = [
        (e.at, e.details[key])
        for e in events
        if e.kind == "metadata-changed" and isinstance((e.details or {}).get(key), dict)
    ]
    if not changes:
        return (Change(first, current),)
    out = [Change(first, convert(changes[0][1].get("from")))]
    out += [Change(at, convert(d.get("to"))) for at, d in changes]
    return tuple(out)


def _resized(
    events: Sequence[m.Event], key: str, current: int, first: datetime
) -> tuple[Change[int], ...]:
    changes = [
        (e.at, e.details[key])
        for e in events
        if e.kind == "resized" and isinstance((e.details or {}).get(key), dict)
    ]
    if not changes:
        return (Change(first, current),)
    out = [Change(first, int(changes[0][1].get("from") or current))]
    out += [Change(at, int(d.get("to") or current)) for at, d in changes]
    return tuple(out)


def _text(value: Any) -> str | None:
    return str(value) if value else None


def _expiry(day: date | None) -> datetime | None:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) if day else None


def _expiry_value(value: Any) -> datetime | None:
    if not value:
        return None
    return _expiry(date.fromisoformat(str(value)[:10]))


def _orphans(s: Session, rows: Sequence[m.VM]) -> list[OrphanedDisk]:
    """Unused volumes; orphaned since their VM's deletion, else since first seen unused."""
    deleted_paths: dict[str, datetime] = {}
    for r in rows:
        if r.deleted_at is None:
            continue
        for d in r.disks or []:
            path = d.get("path")
            if path and (path not in deleted_paths or deleted_paths[path] < r.deleted_at):
                deleted_paths[path] = r.deleted_at
    vols = s.scalars(select(m.Volume).where(m.Volume.used_by.is_(None)))
    return [
        OrphanedDisk(
            path=v.path,
            size_gb=v.capacity_bytes / GIB,
            orphaned_since=max(deleted_paths.get(v.path, v.first_seen_at), v.first_seen_at),
        )
        for v in vols
    ]


__all__ = [
    "HISTORY_CATEGORIES",
    "Change",
    "HistoryParams",
    "MonthWaste",
    "OrphanedDisk",
    "VMHistory",
    "load_histories",
    "month_ends",
    "value_at",
    "waste_over_time",
]
