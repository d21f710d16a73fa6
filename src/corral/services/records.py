"""The live inventory and metrics store as the plain records the sprawl and cost engines read.

Why its own module: the reclamation service prices one VM, the report and the
sprawl/cost services price the fleet; all of them turn the same store rows into
the same records here, and this module imports none of them.

Memory comes from the hypervisor's balloon statistics when the metrics store
has them (labelled ``balloon``), never from inside the guest.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import undefer

from corral.engines.sprawl.inventory_file import Inventory as FleetRecords
from corral.engines.sprawl.model import (
    Disk,
    FloatArray,
    HostRecord,
    MetricBatch,
    Snapshot,
    VMRecord,
    VMState,
    Volume,
)
from corral.inventory.service import Inventory
from corral.metrics.model import EntityKind
from corral.metrics.store.base import MetricsStore
from corral.store import models as m

STEP_S = 300
GIB = 1024**3


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _gib(size_bytes: int | None) -> float | None:
    """Bytes to GiB, keeping "unknown" (an internal snapshot's size) unknown."""
    return size_bytes / GIB if size_bytes is not None else None


class VMColumns(Protocol):
    """The VM columns a record is made of: an ORM row, or a plain row of these columns."""

    @property
    def uuid(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def vcpus(self) -> int: ...
    @property
    def memory_mib(self) -> int: ...
    @property
    def disks(self) -> list[Any] | None: ...
    @property
    def snapshots(self) -> list[Any] | None: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def department(self) -> str | None: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def project(self) -> str | None: ...
    @property
    def environment(self) -> str | None: ...
    @property
    def expires_on(self) -> date | None: ...
    @property
    def tags(self) -> list[Any] | None: ...
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def state_since(self) -> datetime | None: ...


def _gb(size_bytes: int, digits: int | None) -> float:
    return size_bytes / GIB if digits is None else round(size_bytes / GIB, digits)


def vm_record(vm: VMColumns, host: str | None, disk_digits: int | None = None) -> VMRecord:
    """One inventory row as the engines' VM record (``host``: its host's name, if any);
    disk sizes rounded to ``disk_digits`` decimals of a GiB when given (as a fleet file
    writes them)."""
    expiry = (
        datetime.combine(vm.expires_on, datetime.min.time(), tzinfo=UTC) if vm.expires_on else None
    )
    state = VMState(vm.state) if vm.state in VMState._value2member_map_ else VMState.unknown
    return VMRecord(
        uuid=vm.uuid,
        name=vm.name,
        host=host,
        state=state,
        vcpus=vm.vcpus,
        memory_mib=vm.memory_mib,
        disks=tuple(
            Disk(path=d["path"], size_gb=_gb(d.get("capacity_bytes") or 0, disk_digits))
            for d in vm.disks or []
            if d.get("device") == "disk" and d.get("path")
        ),
        snapshots=tuple(
            Snapshot(
                name=s["name"],
                created_at=_when(s.get("created_at")),
                size_gb=_gib(s.get("size_bytes")),
            )
            for s in vm.snapshots or []
        ),
        owner=vm.owner,
        department=vm.department,
        purpose=vm.purpose,
        project=vm.project,
        environment=vm.environment,
        expiry=expiry,
        tags={t: "" for t in vm.tags or []},
        created_at=vm.created_at,
        state_since=vm.state_since,
    )


def fleet_records(inv: Inventory) -> tuple[list[VMRecord], list[HostRecord], list[Volume]]:
    """Live VMs (no templates, no deleted ones), every host, and the volumes no VM uses."""
    with inv.db.session() as s:
        hosts = list(s.scalars(select(m.Host).order_by(m.Host.name)))
        names = {h.id: h.name for h in hosts}
        rows = s.scalars(
            select(m.VM)
            .options(undefer(m.VM.disks), undefer(m.VM.snapshots))  # one query, not one per VM
            .where(m.VM.deleted_at.is_(None), m.VM.is_template.is_(False))
        )
        vms = [vm_record(v, names.get(v.host_id) if v.host_id else None) for v in rows]
        vols = s.execute(
            select(m.Volume, m.Host.name)
            .join(m.Pool, m.Volume.pool_id == m.Pool.id)
            .join(m.Host, m.Pool.host_id == m.Host.id)
            .where(m.Volume.used_by.is_(None))
        ).all()
        volumes = [
            Volume(
                path=v.path,
                size_gb=v.capacity_bytes / GIB,
                pool=None,
                host=h,
                created_at=v.first_seen_at,
            )
            for v, h in vols
        ]
        host_recs = [
            HostRecord(
                name=h.name,
                cores=(h.sockets or 0) * (h.cores_per_socket or 0),
                memory_mib=h.memory_mib or 0,
                core_mhz=float(h.mhz) if h.mhz else None,
            )
            for h in hosts
        ]
    return vms, host_recs, volumes


#: The series the sprawl engines read, per VM.
SPRAWL_METRICS: tuple[str, ...] = (
    "cpu_pct",
    "disk_read_bytes_per_s",
    "disk_write_bytes_per_s",
    "net_rx_bytes_per_s",
    "net_tx_bytes_per_s",
    "mem_used_pct",
)


def metric_window(now: datetime, days: int, step: int = STEP_S) -> tuple[int, int]:
    """``[start, end)`` of ``days`` ending at the last whole ``step`` before ``now``."""
    end = int(now.timestamp()) // step * step
    return end - days * 86400, end


#: Most buckets one read may answer (about 32 bytes each while they are columns).
ROWS_PER_READ = 8_000_000


def _grids(
    store: MetricsStore, uuids: list[str], start: int, end: int, step: int
) -> dict[str, npt.NDArray[np.float64]]:
    """Every sprawl metric of every VM on the grid, NaN where nothing was collected.

    Set-based: one query for all the metrics when its answer fits ``ROWS_PER_READ``
    (series of one VM are usually stored together, so one scan serves all six), else as
    many metrics per query as fit.
    """
    n = (end - start) // step
    per_read = max(1, ROWS_PER_READ // max(1, len(uuids) * n))
    out: dict[str, npt.NDArray[np.float64]] = {}
    for lo in range(0, len(SPRAWL_METRICS), per_read):
        group = SPRAWL_METRICS[lo : lo + per_read]
        cols = store.series_many(EntityKind.vm, uuids, group, start, end, step)
        col = (cols.ts - start) // step
        inside = (col >= 0) & (col < n)
        grids = np.full((len(group), len(uuids), n), np.nan)
        grids[cols.metric[inside], cols.entity[inside], col[inside]] = cols.value[inside]
        del cols, col, inside
        out.update(zip(group, grids, strict=True))
    return out


def metric_batch(
    store: MetricsStore,
    vms: list[VMRecord],
    hosts: list[HostRecord],
    now: datetime,
    days: int,
    step: int = STEP_S,
) -> MetricBatch:
    """The VMs' ``step``-second series over ``days``; NaN where nothing was collected.

    Set-based reads for the whole list (see ``_grids``): callers bound memory by
    passing a chunk of the fleet (an answer is VMs x metrics x samples buckets).
    """
    start, end = metric_window(now, days, step)
    mhz = {h.name: h.core_mhz or 0.0 for h in hosts}
    ids = [v.uuid for v in vms]
    grid = _grids(store, ids, start, end, step)

    def f32(values: npt.NDArray[np.float64]) -> FloatArray:
        return values.astype(np.float32)

    vcpus = np.array([v.vcpus for v in vms], dtype=np.float64)[:, None]
    core = np.array([mhz.get(v.host or "", 0.0) for v in vms], dtype=np.float64)[:, None]
    memory = np.array([v.memory_mib for v in vms], dtype=np.float64)[:, None]
    cpu_mhz = f32(grid.pop("cpu_pct") / 100.0 * vcpus * core)
    disk = f32(grid.pop("disk_read_bytes_per_s") + grid.pop("disk_write_bytes_per_s"))
    net = f32(grid.pop("net_rx_bytes_per_s") + grid.pop("net_tx_bytes_per_s"))
    mem = f32(grid.pop("mem_used_pct") / 100.0 * memory)
    return MetricBatch(
        vm_uuids=tuple(ids),
        start=start,
        step_s=step,
        cpu_mhz=cpu_mhz,
        disk_bytes_s=disk,
        net_bytes_s=net,
        memory_mib={"balloon": mem},
    )


def live_records(inv: Inventory, now: datetime | None = None) -> FleetRecords:
    """The live inventory as fleet records, stamped with the inventory's clock (or ``now``)."""
    vms, hosts, volumes = fleet_records(inv)
    return FleetRecords(
        vms=tuple(vms), hosts=tuple(hosts), volumes=tuple(volumes), now=now or inv.clock()
    )


__all__ = [
    "SPRAWL_METRICS",
    "FleetRecords",
    "fleet_records",
    "live_records",
    "metric_batch",
    "metric_window",
    "vm_record",
]
