"""What the live HA manager knows, for ``corral ha status|plan`` and the REST API.

Read from the state the leader saved after its last round, so any process (a standby,
the API server, a CLI) answers without talking to a host. The plan is always
available: the stored one, or, before any manager ran, the one of the inventory's last
sync computed now (on the process's one reader of the live fleet, which reads the inventory
again only where it changed: a dashboard view of an unchanged fleet reads no VM).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from corral.engines.ha_manager import plans_by_host
from corral.inventory.service import Inventory
from corral.services.ha_live import DEFAULT_NAME
from corral.services.live_capacity import shared_fleet
from corral.store.db import Database
from corral.store.models import HAEventRow, HAManagerStateRow


@dataclass(frozen=True)
class HostView:
    name: str
    state: str
    maintenance: bool


@dataclass(frozen=True)
class VMView:
    name: str
    state: str
    host: str
    target: str | None


@dataclass(frozen=True)
class EventView:
    t: float
    kind: str
    host: str | None
    vm: str | None
    detail: str
    alert: bool


@dataclass(frozen=True)
class HAStatus:
    manager: str
    #: the instance that saved the last round, and when
    leader: str | None
    updated_at: datetime | None
    fencing_held: bool
    hosts: tuple[HostView, ...]
    vms: tuple[VMView, ...]
    events: tuple[EventView, ...]

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return doc


@dataclass(frozen=True)
class PlanEntry:
    failed_host: str
    vm: str
    target: str


@dataclass(frozen=True)
class HAPlan:
    #: "stored" (the manager's) or "inventory" (computed now from the last sync)
    source: str
    entries: tuple[PlanEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(db: Database, name: str = DEFAULT_NAME, last_events: int = 20) -> HAStatus:
    with db.session() as s:
        row = s.get(HAManagerStateRow, name)
        rows = list(
            s.scalars(
                select(HAEventRow)
                .where(HAEventRow.manager == name)
                .order_by(HAEventRow.id.desc())
                .limit(last_events)
            )
        )
    events = tuple(EventView(r.t, r.kind, r.host, r.vm, r.detail, r.alert) for r in reversed(rows))
    if row is None:
        return HAStatus(name, None, None, False, (), (), events)
    manager: Mapping[str, Any] = row.state.get("manager", row.state)
    hosts = tuple(
        HostView(h, str(r["state"]), bool(r["maintenance"]))
        for h, r in sorted(manager["hosts"].items())
    )
    vms = tuple(
        VMView(v, str(r["state"]), str(r["host"]), r.get("target"))
        for v, r in sorted(manager["vms"].items())
    )
    return HAStatus(
        name,
        row.state.get("leader"),
        row.updated_at,
        bool(manager.get("fencing_held", False)),
        hosts,
        vms,
        events,
    )


def plan(db: Database, inventory: Inventory, name: str = DEFAULT_NAME) -> HAPlan:
    with db.session() as s:
        row = s.get(HAManagerStateRow, name)
        stored = row.state.get("protected") if row is not None else None
    if stored is not None:
        plans: Mapping[str, Mapping[str, str]] = stored["plan"]
        source = "stored"
    else:
        plans, source = plans_by_host(shared_fleet(inventory)()), "inventory"
    entries = tuple(
        PlanEntry(h, vm, target)
        for h, per in sorted(plans.items())
        for vm, target in sorted(per.items())
    )
    return HAPlan(source, entries)
