"""The demo fleet's performance history: real traces replayed onto its running VMs.

The VMs' past (``days`` of 5-minute samples) is backfilled in one go. The hosts' past is
read by the real collector (:class:`~corral.metrics.collector.Collector`: the same rate
engine, health samples and store as ``corral metrics collect``) from :class:`FleetReplay`
on a manual clock, an hour a cycle: each host's CPU is its VMs' replayed use, its memory
their memory, each VM counted from its creation in the inventory, its storage what its pool
held that day, so the capacity runway reads the growth the fleet's own history and its VMs'
use show. The present is the same
collector and source on the wall clock while the API is served, so charts keep moving. All
use the same seeded trace assignment, so the live series continues where the past ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from sqlalchemy import select

from corral.demo.fleet import DemoFleet
from corral.demo.nodefile import pool_allocation_bytes
from corral.domain.clock import Clock, ManualClock, SystemClock
from corral.domain.metrics import HostCounters, HostSample, SampleBatch
from corral.errors import ValidationError
from corral.inventory.service import Inventory
from corral.metrics.collector import Collector
from corral.metrics.replay import Assignment, TraceReplaySource, VMSpec, assign, backfill
from corral.services.capacity_runway import HISTORY_DAYS
from corral.services.stores import MetricsStore
from corral.store import models as m

#: Where the shared public traces live beside a checkout (``../shared/data``).
_REPO = Path(__file__).resolve().parents[3]


def default_trace_dir(shared_data: Path | None) -> Path | None:
    """Bitbrains traces from the shared_data setting or ../shared/data, when present."""
    base = shared_data or _REPO.parent / "shared" / "data"
    folder = base / "bitbrains-rnd"
    return folder if folder.is_dir() else None


def running_vms(inv: Inventory, host_names: list[str]) -> list[VMSpec]:
    with inv.db.session() as s:
        rows = s.execute(
            select(m.VM.uuid, m.Host.name, m.VM.vcpus, m.VM.memory_mib)
            .join(m.Host, m.VM.host_id == m.Host.id)
            .where(
                m.Host.name.in_(host_names),
                m.VM.deleted_at.is_(None),
                m.VM.state == "running",
                m.VM.is_template.is_(False),
            )
            .order_by(m.VM.uuid)
        ).all()
    return [(u, h, int(c), int(mem)) for u, h, c, mem in rows]


@dataclass(frozen=True, slots=True)
class Backfilled:
    vms: int
    samples: int
    seconds: float


def backfill_history(
    store: MetricsStore,
    vms: list[VMSpec],
    trace_dir: Path,
    days: float,
    seed: int,
    *,
    end: float | None = None,
) -> Backfilled:
    if not vms:
        raise ValidationError("the demo fleet has no running VMs to give a history to.")
    t0 = time.perf_counter()
    n = backfill(store, vms, trace_dir, days, end, seed=seed)
    return Backfilled(len(vms), n, time.perf_counter() - t0)


#: One collector cycle an hour over the hosts' past: the runway reads hourly means.
HOST_STEP_S = 3600
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class FleetShape:
    """What the inventory says of the demo's hosts and running VMs, for the replay."""

    #: host -> (CPU threads, memory MiB)
    sizes: Mapping[str, tuple[int, int]]
    #: VM UUID -> epoch seconds of its creation
    since: Mapping[str, float]
    #: host -> (epoch seconds, bytes its pool's volumes hold from then), in time order
    storage: Mapping[str, tuple[tuple[float, int], ...]] = field(default_factory=dict)

    def storage_at(self, host: str, ts: float) -> int | None:
        steps = self.storage.get(host, ())
        held = [used for since, used in steps if since <= ts]
        return held[-1] if held else None


def fleet_shape(inv: Inventory, demo: DemoFleet, days: int = HISTORY_DAYS) -> FleetShape:
    """The inventory's hosts and VMs of ``demo``, with what its pools held each of the last
    ``days`` days (the demo's node files' volumes, day by day: disks of new VMs, growing
    snapshot overlays, disks left behind)."""
    host_names = [h.name for h in demo.hosts]
    with inv.db.session() as s:
        hosts = s.execute(
            select(m.Host.name, m.Host.cpus, m.Host.memory_mib).where(m.Host.name.in_(host_names))
        ).all()
        vms = s.execute(
            select(m.VM.uuid, m.VM.created_at)
            .join(m.Host, m.VM.host_id == m.Host.id)
            .where(m.Host.name.in_(host_names), m.VM.deleted_at.is_(None))
        ).all()
    # A day's pool from its 9 am sync; one day more than the history, so its first hours have
    # a pool however early today it is; and today's pool from now at the latest: before 9 am
    # the demo's node files already hold today's
    now = time.time()
    storage = {
        host.name: tuple(
            (min(_nine_am(demo, d), now), pool_allocation_bytes(demo, i, d))
            for d in range(days + 1, -1, -1)
        )
        for i, host in enumerate(demo.hosts)
    }
    return FleetShape(
        {name: (int(cpus or 1), int(mem or 1)) for name, cpus, mem in hosts},
        {uuid: created.timestamp() for uuid, created in vms},
        storage,
    )


def _nine_am(demo: DemoFleet, days_ago: int) -> float:
    """When the demo syncs a day (as build_demo does)."""
    return datetime.combine(demo.today - timedelta(days=days_ago), dtime(9, 0), UTC).timestamp()


class FleetReplay(TraceReplaySource):
    """The demo's hosts as the collector reads them: each host's CPU is its VMs' replayed
    use, its memory in use their memory, each VM counted from its creation (so the fleet's
    growth is the inventory's), its storage what its pool held that day; with ``domains``
    the VMs' own counters too.

    A VM's CPU time counts from its creation, so the host's counter only ever grows when a
    VM appears (a counter that fell back would read as a reset, not as use).
    """

    def __init__(
        self,
        assignments: Sequence[Assignment],
        shape: FleetShape,
        clock: Clock,
        *,
        domains: bool = True,
    ) -> None:
        super().__init__(assignments, clock)
        self.shape, self.domains = shape, domains

    def hosts(self) -> list[str]:
        """Every host of the inventory, one without running VMs too (it reads idle)."""
        return sorted(self.shape.sizes)

    def read(self, host: str) -> HostSample:
        now = self.clock.now()
        mine = [a for a in self._by_host.get(host, []) if self._since(a) <= now]
        busy = int(sum(self._cpu_ns(a, now) for a in mine))
        cpus, memory_mib = self.shape.sizes[host]
        total_kib = memory_mib * 1024
        node = HostCounters(
            cpus=cpus,
            cpu_user_ns=busy,
            cpu_kernel_ns=0,
            cpu_idle_ns=max(0, int(now * _NS) * cpus - busy),
            mem_total_kib=total_kib,
            mem_free_kib=max(1, total_kib - sum(a.memory_mib for a in mine) * 1024),
            storage_used_bytes=self.shape.storage_at(host, now),
        )
        doms = tuple(self._domain(a, now) for a in mine) if self.domains else ()
        return HostSample(host, now, node, doms)

    def _since(self, a: Assignment) -> float:
        return self.shape.since.get(a.uuid, float("-inf"))

    def _cpu_ns(self, a: Assignment, now: float) -> float:
        """CPU time (ns) ``a`` has used since its creation (or since the epoch, unknown)."""
        since = max(self._since(a), 0.0)
        used = self._integral(a, "cpu_pct", now) - self._integral(a, "cpu_pct", since)
        return used * a.vcpus * _NS / 100


@dataclass(frozen=True, slots=True)
class HostHistory:
    hosts: int
    days: float
    cycles: int
    samples: int


def record_host_history(
    store: MetricsStore,
    vms: list[VMSpec],
    shape: FleetShape,
    trace_dir: Path,
    seed: int,
    *,
    end: float,
    days: float = HISTORY_DAYS,
) -> HostHistory:
    """The hosts' past ``days`` up to ``end``, read hour by hour by the real collector."""
    if not vms:
        raise ValidationError("the demo fleet has no running VMs to give a history to.")
    cycles = int(days * 86400) // HOST_STEP_S
    clock = ManualClock(end - cycles * HOST_STEP_S)
    source = FleetReplay(assign(vms, trace_dir, seed), shape, clock, domains=False)
    cycle_batches: list[SampleBatch] = []  # written at once: a store write per cycle cost 10 ms
    collector = Collector(source, cycle_batches.append, interval_s=HOST_STEP_S, clock=clock)
    reports = collector.run(threading.Event(), cycles=cycles + 1)
    failed = {h: why for r in reports for h, why in r.errors.items()}
    if failed:
        raise ValidationError(f"the demo's host history could not be read: {failed}.")
    samples = [s for batch in cycle_batches for s in batch.to_samples()]
    written = store.write(SampleBatch.from_samples(samples))
    store.rollup(int(end))
    return HostHistory(len(source.hosts()), days, len(reports), written)


def start_live(
    store: MetricsStore,
    vms: list[VMSpec],
    shape: FleetShape,
    trace_dir: Path,
    seed: int,
    *,
    interval_s: float = 60.0,
) -> threading.Event:
    """Collect the replayed present every ``interval_s`` in a thread; set the event to stop."""
    clock = SystemClock()
    source = FleetReplay(assign(vms, trace_dir, seed), shape, clock)
    collector = Collector(source, store.write, interval_s=interval_s, clock=clock)
    stop = threading.Event()

    def loop() -> None:
        try:
            collector.run(stop)
        finally:
            collector.close()

    threading.Thread(target=loop, name="demo-live-metrics", daemon=True).start()
    return stop
