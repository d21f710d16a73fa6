"""No purpose: a VM nobody can say why it exists is the first to forget."""

from __future__ import annotations

from corral.engines.sprawl.detectors.base import DetectionContext, Detector, is_blank
from corral.engines.sprawl.model import Category, Evidence, Outcome


class NoPurposeDetector(Detector):
    name = "no_purpose"
    category = Category.no_purpose
    description = "VMs whose purpose is missing or a placeholder such as 'n/a' or 'tbd'."

    def detect(self, ctx: DetectionContext) -> list[Outcome]:
        out: list[Outcome] = []
        for vm in ctx.vms:
            if is_blank(vm.purpose):
                evidence = Evidence({"purpose": vm.purpose or "", "owner": vm.owner or ""})
                action = "ask the owner to state the purpose, or let it be reclaimed"
                out.append(self.finding(vm, ctx, evidence, action))
        return out
