"""No purpose: a VM nobody can say why it exists is the first to forget."""

from __future__ import annotations

from corral.engines.sprawl.detectors.base import MissingFieldDetector
from corral.engines.sprawl.model import Category


class NoPurposeDetector(MissingFieldDetector):
    name = "no_purpose"
    category = Category.no_purpose
    description = "VMs whose purpose is missing or a placeholder such as 'n/a' or 'tbd'."
    field = "purpose"
    context_field = "owner"
    action = "ask the owner to state the purpose, or let it be reclaimed"
