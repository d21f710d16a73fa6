"""The live fleet a request decision places on, read again only when the inventory changed.

Reading the whole inventory into a fleet (corral.services.fleet.live_fleet) takes seconds
at 10,000 hosts; a decision must take milliseconds. Between syncs the fleet does not
change, so each decision asks one set-based question instead — how many hosts with which
total capacity, how many VM rows of which sizes, where, running or not, and when the last
one changed — and reuses the fleet (and
with it the placement state the request service built from it) while the answer is the same.

The answer is taken *before* a rebuild reads the fleet, so a change committed during the
read makes the next decision read again: a decision may place on the fleet as of the last
sync, never on one older than the answer it checked.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select

from corral.engines.planning.model import Fleet
from corral.services.fleet import live_fleet
from corral.store import models as m

if TYPE_CHECKING:
    from corral.inventory.service import Inventory


class LiveFleet:
    """Callable: the inventory's fleet, the same object while the inventory is unchanged."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.reads = 0  # how many times the whole fleet was read (a figure for tests)
        self._key: tuple[Any, ...] | None = None
        self._fleet: Fleet | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Fleet:
        key = self.fingerprint()
        with self._lock:
            if self._fleet is None or key != self._key:
                self._fleet = live_fleet(self.inventory).fleet
                self._key = key
                self.reads += 1
            return self._fleet

    def fingerprint(self) -> tuple[Any, ...]:
        """Hosts and their capacity, VM rows, their sizes, places, states and last change: two
        aggregate queries (sums as well as the latest time: two writes within one clock tick
        must not look like none)."""
        h, v = m.Host, m.VM
        with self.inventory.db.session() as s:
            hosts = s.execute(
                select(
                    func.count(h.id),
                    func.max(h.id),
                    func.coalesce(func.sum(h.cpus), 0),
                    func.coalesce(func.sum(h.memory_mib), 0),
                    func.coalesce(func.sum(h.mhz), 0),
                    func.coalesce(func.sum(h.threads_per_core), 0),
                )
            ).one()
            vms = s.execute(
                select(
                    func.count(v.uuid),
                    func.max(v.updated_at),
                    func.coalesce(func.sum(v.host_id), 0),  # a VM moved or gone
                    func.coalesce(func.sum(v.vcpus), 0),
                    func.coalesce(func.sum(v.memory_mib), 0),
                    func.coalesce(func.sum(v.meta_version), 0),  # protection written by Corral
                    func.count(v.deleted_at),
                    func.coalesce(func.sum(case((v.state == "running", 1), else_=0)), 0),
                )
            ).one()
        return (*hosts, *vms)


__all__ = ["LiveFleet"]
