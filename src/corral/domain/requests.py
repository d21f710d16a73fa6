"""A request for new VMs: its states, its size, and the quota dimensions it counts against.

Plain types shared by the approval engine (corral.engines.approval), the request service
(corral.services.requests) and the provisioner that takes an approved request over.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RequestState(StrEnum):
    """Where a request is. ``denied``, ``cancelled`` and ``expired`` are final."""

    draft = "draft"
    pending = "pending"
    approved = "approved"
    denied = "denied"
    cancelled = "cancelled"
    expired = "expired"
    provisioning = "provisioning"
    provisioned = "provisioned"
    failed = "failed"


S = RequestState
FINAL: frozenset[RequestState] = frozenset({S.denied, S.cancelled, S.expired})
#: States whose capacity is booked: the reservation lives until provisioned, failed or expired.
RESERVING: frozenset[RequestState] = frozenset({S.approved, S.provisioning})
#: The moves a request may make; anything else is a conflict.
TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    S.draft: frozenset({S.pending, S.approved, S.denied, S.cancelled}),
    S.pending: frozenset({S.approved, S.denied, S.cancelled, S.expired}),
    S.approved: frozenset({S.provisioning, S.provisioned, S.failed, S.cancelled, S.expired}),
    S.provisioning: frozenset({S.provisioned, S.failed}),
    S.denied: frozenset(),
    S.cancelled: frozenset(),
    S.expired: frozenset(),
    S.provisioned: frozenset(),
    S.failed: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Size:
    """The size of each VM of a request."""

    vcpus: int
    memory_mib: int
    disk_gb: float


class QuotaDimension(StrEnum):
    """What a department's quota limits."""

    vcpus = "vcpus"
    memory_mib = "memory_mib"
    storage_gb = "storage_gb"
    vms = "vms"
    monthly_cost = "monthly_cost"
