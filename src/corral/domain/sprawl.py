"""The kinds of sprawl finding: plain values shared by the sprawl engine, the services and
every interface that shows or filters findings."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """Reclamation categories; the order is the tie-break when two hold the same money."""

    powered_off = "powered_off"
    idle = "idle"
    lease_expired = "lease_expired"
    orphaned_disk = "orphaned_disk"
    snapshot_sprawl = "snapshot_sprawl"
    no_owner = "no_owner"
    no_purpose = "no_purpose"
