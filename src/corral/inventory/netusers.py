"""Which hosts' network users (corral.store.network_users) a sync counts again.

A host's counts move when one of its live VMs comes, goes (deleted, or moved to another host)
or changes what its NICs are on, and when its networks change (a bridge NIC's network is the
host's network on that bridge). The sync shows each host's reported VMs here before it applies
them, while their stored rows still say what they were; the hosts found are counted again once
the sync has written everything, in its transaction. A sync in which VMs only changed state,
size or metadata counts nothing again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.domain.model import HostInventory, Nic
from corral.store import models as m
from corral.store.bulk import one_of
from corral.store.network_users import recount


class NetworkUsers:
    """The hosts of one sync whose network users moved, found as each host is applied."""

    def __init__(
        self,
        s: Session,
        hosts: Sequence[m.Host],
        holders: Mapping[str, m.Host],
        held: Mapping[int, Collection[str]],
    ) -> None:
        self.s = s
        self.holders = holders  # the host each reported VM is applied on
        self.held = held  # each host's live VMs, as stored before the sync
        self.moved: set[int] = set()
        self.bridges = _stored_bridges(s, [h.id for h in hosts])

    def applying(self, host: m.Host, inv: HostInventory, rows: Mapping[str, m.VM]) -> None:
        """Before ``host``'s reported VMs are applied; ``rows`` are their stored rows (none:
        a VM new to the store), not yet changed."""
        if host.id not in self.moved and self._moved_on(host, inv):
            self.moved.add(host.id)
        for facts in inv.vms:
            if self.holders.get(facts.uuid) is not host:
                continue  # another host's copy is the VM
            row = rows.get(facts.uuid)
            if row is None or row.deleted_at is not None:
                self.moved.add(host.id)  # new, or back from the dead
            elif row.host_id != host.id:
                self.moved.add(host.id)
                if row.host_id is not None:
                    self.moved.add(row.host_id)  # moved here from there
            elif _stored_nics(row.nics) != _read_nics(facts.nics):
                self.moved.add(host.id)

    def _moved_on(self, host: m.Host, inv: HostInventory) -> bool:
        """Whether the host's networks changed, or a VM it held left it (gone, or another
        host's copy is the VM now)."""
        if self.bridges.get(host.id, {}) != {n.name: n.bridge for n in inv.networks}:
            return True
        return any(self.holders.get(u) is not host for u in self.held.get(host.id, ()))

    def write(self) -> None:
        """Count the hosts found again, from what the sync wrote."""
        recount(self.s, self.moved)


def _stored_bridges(s: Session, host_ids: list[int]) -> dict[int, dict[str, str | None]]:
    out: dict[int, dict[str, str | None]] = {}
    q = select(m.Network.host_id, m.Network.name, m.Network.bridge)
    for on_hosts in one_of(s, m.Network.host_id, host_ids):
        for host_id, name, bridge in s.execute(q.where(on_hosts)):
            out.setdefault(host_id, {})[name] = bridge
    return out


def _stored_nics(nics: Any) -> list[Any]:
    """What a stored NIC list says of the networks its NICs are on (anything else than a
    list of objects is itself: compared, it differs from what a host reports)."""
    if not isinstance(nics, list):
        return [nics]
    return [
        (n.get("network"), n.get("type"), n.get("source")) if isinstance(n, dict) else n
        for n in nics
    ]


def _read_nics(nics: Sequence[Nic]) -> list[Any]:
    return [(n.network, n.type, n.source) for n in nics]


__all__ = ["NetworkUsers"]
