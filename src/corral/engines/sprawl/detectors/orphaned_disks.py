"""Orphaned disks: volumes in a storage pool that no VM uses still fill the storage bill."""

from __future__ import annotations

import posixpath

from corral.engines.sprawl.detectors.base import DetectionContext, Detector, Param
from corral.engines.sprawl.model import Category, Evidence, Finding, Outcome, Volume


class OrphanedDiskDetector(Detector):
    name = "orphaned_disks"
    category = Category.orphaned_disk
    description = (
        "Volumes attached to no VM (nor used as a snapshot or template by one), at least "
        "`min_age_days` old. A volume of unknown age is still reported, with lower confidence."
    )
    params = (
        Param("min_age_days", 7, "younger volumes may be in the middle of provisioning"),
        Param("min_size_gb", 0, "ignore volumes smaller than this"),
        Param("unknown_age_confidence", 0.7, "confidence when the creation date is unknown", 0, 1),
    )

    def detect(self, ctx: DetectionContext) -> list[Outcome]:
        used = {posixpath.normpath(d.path) for vm in ctx.vms for d in vm.disks}
        out: list[Outcome] = []
        for vol in ctx.volumes:
            if posixpath.normpath(vol.path) in used or vol.size_gb < self.param("min_size_gb"):
                continue
            finding = self._judge(vol, ctx)
            if finding is not None:
                out.append(finding)
        return out

    def _judge(self, vol: Volume, ctx: DetectionContext) -> Finding | None:
        measures: dict[str, float | int | str] = {"size_gb": vol.size_gb, "pool": vol.pool or ""}
        confidence = 1.0
        if vol.created_at is None:
            measures["age_days"] = "unknown"
            confidence = self.param("unknown_age_confidence")
        else:
            age = (ctx.now - vol.created_at).total_seconds() / 86400.0
            if age < self.param("min_age_days"):
                return None
            measures["age_days"] = round(age, 1)
        return Finding(
            subject=vol.path,
            subject_name=posixpath.basename(vol.path),
            category=self.category,
            detector=self.name,
            evidence=Evidence(measures, window_start=vol.created_at, window_end=ctx.now),
            confidence=confidence,
            monthly_cost_held=vol.size_gb * ctx.cost_model.storage.price_per_gb_month,
            suggested_action="confirm no VM or template needs it, then archive and delete it",
        )
