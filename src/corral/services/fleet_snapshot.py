"""One fleet as every engine sees it, and where it was read from.

Its own module so the live inventory's reader (corral.services.live_capacity) and the
readers of files and documents (corral.services.fleet) build the same type without
importing each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from corral.engines.planning.model import Fleet
from corral.engines.sprawl.inventory_file import Inventory as Records
from corral.engines.sprawl.model import HostRecord, VMRecord, Volume


class FleetOrigin(enum.StrEnum):
    """Where a snapshot was read from."""

    file = "file"
    document = "document"  # a parsed document, e.g. a REST request body
    live = "live"  # the live inventory's last sync


@dataclass(frozen=True)
class FleetSnapshot:
    """One fleet, seen by every engine: ``fleet`` for planning/HA, the records for cost/sprawl.

    ``vms``/``hosts``/``volumes``/``now`` are the cost and sprawl engines' inputs (the
    same fields as the inventory-file reader's ``Inventory``); ``notices`` are sentences
    to show the user (e.g. that the file is in a deprecated format), never errors.
    """

    fleet: Fleet
    vms: tuple[VMRecord, ...]
    hosts: tuple[HostRecord, ...]
    volumes: tuple[Volume, ...]
    now: datetime | None
    origin: FleetOrigin
    source: str
    notices: tuple[str, ...] = ()
    #: the document itself, for engines that read keys of their own (backup: tiers, datastores)
    document: Any = None

    @property
    def records(self) -> Records:
        """The cost/sprawl view as the inventory-file reader's ``Inventory``."""
        return Records(self.vms, self.hosts, self.volumes, self.now)


__all__ = ["FleetOrigin", "FleetSnapshot"]
