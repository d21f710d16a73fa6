"""The demo fleet's performance history: real traces replayed onto its running VMs.

The past (``days`` of 5-minute samples) is backfilled in one go; the present
is a collector reading a trace-replay source on an interval while the API is
served, so charts keep moving. Both use the same seeded trace assignment, so
the live series continues exactly where the backfill ended.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from corral.errors import ValidationError
from corral.inventory.service import Inventory
from corral.metrics.collector import Collector
from corral.metrics.replay import TraceReplaySource, VMSpec, assign, backfill
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
    store: MetricsStore, vms: list[VMSpec], trace_dir: Path, days: float, seed: int
) -> Backfilled:
    if not vms:
        raise ValidationError("the demo fleet has no running VMs to give a history to.")
    t0 = time.perf_counter()
    n = backfill(store, vms, trace_dir, days, seed=seed)
    return Backfilled(len(vms), n, time.perf_counter() - t0)


def start_live(
    store: MetricsStore, vms: list[VMSpec], trace_dir: Path, seed: int, interval_s: float = 60.0
) -> threading.Event:
    """Collect the replayed present every ``interval_s`` in a thread; set the event to stop."""
    collector = Collector(
        TraceReplaySource(assign(vms, trace_dir, seed)), store.write, interval_s=interval_s
    )
    stop = threading.Event()

    def loop() -> None:
        try:
            collector.run(stop)
        finally:
            collector.close()

    threading.Thread(target=loop, name="demo-live-metrics", daemon=True).start()
    return stop
