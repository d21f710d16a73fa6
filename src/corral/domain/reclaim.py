"""The states of a reclamation case: plain values shared by the workflow engine, the
service and every interface that shows or filters cases."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    flagged = "flagged"
    notified = "notified"
    confirmed = "confirmed"
    quarantined = "quarantined"
    archived = "archived"
    deleted = "deleted"
    extended = "extended"
    restored = "restored"
    cancelled = "cancelled"
