"""Build the demo fleet into the inventory: node files written day by day, each synced at its date.

The history the demo shows (VMs created, powered off, migrated, resized,
snapshotted, deleted) is therefore recorded by the real sync code from real
test-driver hosts, only with the clock set to each day in turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from corral.demo.fleet import DemoFleet, generate
from corral.demo.nodefile import node_tree, write_node_file
from corral.inventory.service import Inventory
from corral.store import models as m

#: Days before today at which the fleet is written and synced.
STAGES = (365, 180, 120, 90, 60, 45, 30, 21, 14, 7, 3, 1, 0)


@dataclass(frozen=True, slots=True)
class DemoResult:
    fleet: DemoFleet
    folder: Path
    stages: int


def reset_demo(inv: Inventory, folder: Path) -> None:
    """Forget a previous demo (its hosts, VMs and events); other hosts are left alone."""
    prefix = f"test://{folder.resolve()}/"
    with inv.db.session() as s:
        hosts = list(s.scalars(select(m.Host).where(m.Host.uri.startswith(prefix))))
        ids = [h.id for h in hosts]
        names = [h.name for h in hosts]
        if not ids:
            return
        uuids = list(s.scalars(select(m.VM.uuid).where(m.VM.host_id.in_(ids))))
        for i in range(0, len(uuids), 500):
            chunk = uuids[i : i + 500]
            s.execute(delete(m.Event).where(m.Event.vm_uuid.in_(chunk)))
            cases = select(m.ReclaimCase.id).where(m.ReclaimCase.vm_uuid.in_(chunk))
            s.execute(delete(m.ReclaimApproval).where(m.ReclaimApproval.case_id.in_(cases)))
            s.execute(delete(m.ReclaimCase).where(m.ReclaimCase.vm_uuid.in_(chunk)))
        s.execute(delete(m.Event).where(m.Event.host_name.in_(names)))
        s.execute(delete(m.VM).where(m.VM.host_id.in_(ids)))
        for h in hosts:
            s.delete(h)


def build_demo(
    inv: Inventory,
    folder: Path,
    *,
    seed: int = 7,
    n_vms: int = 150,
    n_hosts: int = 6,
    today: date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoResult:
    today = today or datetime.now(UTC).date()
    fleet = generate(seed=seed, n_vms=n_vms, n_hosts=n_hosts, today=today)
    folder = folder.resolve()
    reset_demo(inv, folder)
    paths = [folder / f"{h.name}.xml" for h in fleet.hosts]
    for i, path in enumerate(paths):
        write_node_file(path, node_tree(fleet, i, STAGES[0]))
        inv.add_host(fleet.hosts[i].name, f"test://{path}")
    real_clock = inv.clock
    try:
        for n, days_ago in enumerate(STAGES, 1):
            for i, path in enumerate(paths):
                write_node_file(path, node_tree(fleet, i, days_ago))
            moment = datetime.combine(today - timedelta(days=days_ago), time(9, 0), tzinfo=UTC)
            if days_ago == 0:
                moment = min(real_clock(), moment) if real_clock().date() == today else moment
            inv.clock = lambda moment=moment: moment  # type: ignore[misc]
            inv.sync([h.name for h in fleet.hosts])
            if progress:
                progress(n, len(STAGES))
    finally:
        inv.clock = real_clock
    return DemoResult(fleet, folder, len(STAGES))


def summary(inv: Inventory, host_names: list[str]) -> dict[str, Any]:
    """The inventory summary the demo prints: what a fleet owner wants to see first."""
    now = inv.clock()
    with inv.db.session() as s:
        hosts = list(
            s.scalars(select(m.Host).where(m.Host.name.in_(host_names)).order_by(m.Host.name))
        )
        ids = [h.id for h in hosts]
        vms = list(s.scalars(select(m.VM).where(m.VM.host_id.in_(ids))))
        live = [v for v in vms if v.deleted_at is None]
        per_host = []
        for h in hosts:
            mine = [v for v in live if v.host_id == h.id]
            run = [v for v in mine if v.state == "running"]
            per_host.append(
                {
                    "host": h.name,
                    "cpu": f"{h.cpus}x{h.mhz} MHz {h.cpu_model}",
                    "memory_gib": (h.memory_mib or 0) // 1024,
                    "vms": len(mine),
                    "running": len(run),
                    "vcpus_running": sum(v.vcpus for v in run),
                    "memory_running_gib": sum(v.memory_mib for v in run) // 1024,
                    "mem_committed_pct": round(
                        100 * sum(v.memory_mib for v in run) / (h.memory_mib or 1)
                    ),
                }
            )
        old_snap = now - timedelta(days=90)
        snaps = [sn for v in live for sn in v.snapshots or []]
        orphans = list(
            s.scalars(
                select(m.Volume)
                .join(m.Pool)
                .where(m.Pool.host_id.in_(ids), m.Volume.used_by.is_(None))
            )
        )
        events = dict(
            s.execute(
                select(m.Event.kind, func.count())
                .where(m.Event.host_name.in_(host_names))
                .group_by(m.Event.kind)
            ).all()
        )
        off = [v for v in live if v.state == "shutoff" and not v.is_template]
        fleet = {
            "vms": len(live),
            "running": sum(v.state == "running" for v in live),
            "paused": sum(v.state == "paused" for v in live),
            "powered_off": len(off),
            "powered_off_30d": sum(v.state_since <= now - timedelta(days=30) for v in off),
            "powered_off_90d": sum(v.state_since <= now - timedelta(days=90) for v in off),
            "templates": sum(v.is_template for v in live),
            "no_owner": sum(not v.owner for v in live),
            "no_purpose": sum(not v.purpose for v in live),
            "lease_expired": sum(bool(v.expires_on and v.expires_on < now.date()) for v in live),
            "snapshots": len(snaps),
            "snapshots_older_90d": sum(
                datetime.fromisoformat(sn["created_at"]) < old_snap for sn in snaps
            ),
            "orphaned_volumes": len(orphans),
            "orphaned_gib": round(sum(v.capacity_bytes for v in orphans) / 1024**3),
            "deleted_vms_tombstoned": sum(v.deleted_at is not None for v in vms),
        }
        return {"hosts": per_host, "fleet": fleet, "events": dict(sorted(events.items()))}
