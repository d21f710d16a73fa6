"""Powered off for N days: still pays storage, licences and agents, returns nothing."""

from __future__ import annotations

from corral.engines.sprawl.detectors.base import DetectionContext, Detector, Param
from corral.engines.sprawl.model import Category, Evidence, Outcome


class PoweredOffDetector(Detector):
    name = "powered_off"
    category = Category.powered_off
    description = "VMs shut off continuously for at least `days` days."
    params = (Param("days", 30, "minimum days continuously powered off", minimum=0),)

    def detect(self, ctx: DetectionContext) -> list[Outcome]:
        out: list[Outcome] = []
        for vm in ctx.vms:
            if vm.powered_on or not vm.state.known:
                continue
            if vm.state_since is None:
                out.append(self.insufficient(vm, "powered off, but since when is unknown"))
                continue
            days_off = (ctx.now - vm.state_since).total_seconds() / 86400.0
            if days_off >= self.param("days"):
                evidence = Evidence(
                    {"state": vm.state.value, "days_off": round(days_off, 1)},
                    window_start=vm.state_since,
                    window_end=ctx.now,
                )
                action = "ask the owner, then archive (export) and delete after cooling-off"
                out.append(self.finding(vm, ctx, evidence, action))
        return out
