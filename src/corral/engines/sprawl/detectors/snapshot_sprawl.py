"""Snapshot sprawl: snapshots are not backups; old, many or large ones cost storage and speed."""

from __future__ import annotations

from datetime import datetime

from corral.engines.sprawl.detectors.base import DetectionContext, Detector, Param
from corral.engines.sprawl.model import Category, Evidence, Outcome, Snapshot, VMRecord


class SnapshotSprawlDetector(Detector):
    name = "snapshot_sprawl"
    category = Category.snapshot_sprawl
    description = (
        "VMs with snapshots older than `max_age_days`, more than `max_count` snapshots, or more "
        "than `max_total_gb` of them. The money held is the storage of the offending snapshots."
    )
    params = (
        Param("max_age_days", 14, "a snapshot older than this should have been consolidated"),
        Param("max_count", 3, "more snapshots than this on one VM is sprawl"),
        Param("max_total_gb", 100, "more snapshot storage than this on one VM is sprawl"),
    )

    def detect(self, ctx: DetectionContext) -> list[Outcome]:
        out: list[Outcome] = []
        for vm in ctx.vms:
            if vm.snapshots:
                outcome = self._judge(vm, ctx)
                if outcome is not None:
                    out.append(outcome)
        return out

    def _judge(self, vm: VMRecord, ctx: DetectionContext) -> Outcome | None:
        snaps = vm.snapshots
        old = [s for s in snaps if _age_days(s, ctx.now) > self.param("max_age_days")]
        excess = _oldest_first(snaps)[: max(0, len(snaps) - int(self.param("max_count")))]
        known_total = sum(s.size_gb or 0.0 for s in snaps)
        too_large = known_total > self.param("max_total_gb")
        if not (old or excess or too_large):
            if any(s.created_at is None or s.size_gb is None for s in snaps):
                return self.insufficient(vm, "some snapshots have no creation date or size")
            return None
        offending = list(snaps) if too_large else _unique(old + excess)
        held_gb = sum(s.size_gb or 0.0 for s in offending)
        unknown = sum(1 for s in offending if s.size_gb is None)
        oldest = max((_age_days(s, ctx.now) for s in snaps), default=0.0)
        measures: dict[str, float | int | str] = {
            "snapshots": len(snaps),
            "older_than_limit": len(old),
            "oldest_days": round(oldest, 1),
            "total_gb": round(known_total, 2),
            "offending_gb": round(held_gb, 2),
            "sizes_unknown": unknown,
        }
        price = ctx.cost_model.storage.snapshot_price_per_gb_month
        action = "review with the owner, then delete (consolidate) the offending snapshots"
        evidence = Evidence(measures, window_end=ctx.now)
        confidence = 1.0 - unknown / max(1, len(offending))
        return self.finding(vm, ctx, evidence, action, confidence=confidence, held=held_gb * price)


def _age_days(snap: Snapshot, now: datetime) -> float:
    if snap.created_at is None:
        return 0.0
    return (now - snap.created_at).total_seconds() / 86400.0


def _oldest_first(snaps: tuple[Snapshot, ...]) -> list[Snapshot]:
    return sorted(snaps, key=lambda s: s.created_at.timestamp() if s.created_at else 0.0)


def _unique(snaps: list[Snapshot]) -> list[Snapshot]:
    seen: list[Snapshot] = []
    for s in snaps:
        if not any(s is t for t in seen):
            seen.append(s)
    return seen
