"""No owner: nobody to ask whether the VM is still needed, nobody who pays for it."""

from __future__ import annotations

from corral.engines.sprawl.detectors.base import DetectionContext, Detector, is_blank
from corral.engines.sprawl.model import Category, Evidence, Outcome


class NoOwnerDetector(Detector):
    name = "no_owner"
    category = Category.no_owner
    description = "VMs whose owner is missing or a placeholder such as 'n/a' or 'unknown'."

    def detect(self, ctx: DetectionContext) -> list[Outcome]:
        out: list[Outcome] = []
        for vm in ctx.vms:
            if is_blank(vm.owner):
                evidence = Evidence({"owner": vm.owner or "", "department": vm.department or ""})
                action = "find and record an owner; quarantine if nobody claims it"
                out.append(self.finding(vm, ctx, evidence, action))
        return out
