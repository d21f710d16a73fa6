"""No owner: nobody to ask whether the VM is still needed, nobody who pays for it."""

from __future__ import annotations

from corral.engines.sprawl.detectors.base import MissingFieldDetector
from corral.engines.sprawl.model import Category


class NoOwnerDetector(MissingFieldDetector):
    name = "no_owner"
    category = Category.no_owner
    description = "VMs whose owner is missing or a placeholder such as 'n/a' or 'unknown'."
    field = "owner"
    context_field = "department"
    action = "find and record an owner; quarantine if nobody claims it"
