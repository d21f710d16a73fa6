"""Lease expired: the VM outlived the date it was asked for."""

from __future__ import annotations

from datetime import timedelta

from corral.engines.sprawl.detectors.base import DetectionContext, Detector, Param
from corral.engines.sprawl.model import Category, Evidence, Outcome


class LeaseExpiredDetector(Detector):
    name = "lease_expired"
    category = Category.lease_expired
    description = "VMs whose expiry date passed more than `grace_days` ago (no expiry: no lease)."
    params = (Param("grace_days", 0, "days after expiry before it counts", minimum=0),)

    def detect(self, ctx: DetectionContext) -> list[Outcome]:
        out: list[Outcome] = []
        limit = ctx.now - timedelta(days=self.param("grace_days"))
        for vm in ctx.vms:
            if vm.expiry is None or vm.expiry > limit:
                continue
            overdue = (ctx.now - vm.expiry).total_seconds() / 86400.0
            evidence = Evidence(
                {"expiry": vm.expiry.isoformat(), "days_overdue": round(overdue, 1)},
                window_start=vm.expiry,
                window_end=ctx.now,
            )
            action = "notify the owner: extend the lease with a reason, or it is reclaimed"
            out.append(self.finding(vm, ctx, evidence, action))
        return out
