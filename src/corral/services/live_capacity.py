"""The live fleet a request decision places on, read again only where the inventory changed.

A decision must take milliseconds; the inventory changes between decisions (a sync, a
metadata write), at 10,000 hosts almost always somewhere. So each decision first asks one
set-based question — how many hosts with which total capacity, how many VM rows of which
sizes, where, running or not, and when the last one changed — and reuses the fleet (and
with it the placement state the request service built from it) while the answer is the same.

When the answer differs, the fleet is read again with plain column queries, never by loading
ORM objects and never one query per host or VM: the hosts' capacity columns (one query), a
fingerprint of each host's live VMs (one grouped query), and the VM columns of only the hosts
whose fingerprint changed (one query for all of them; a few when very many changed). The
first read reads every host's VMs in one query.

The answer is taken *before* a rebuild reads the fleet, and each host's fingerprint before
its VMs, so a change committed during the read makes the next decision read again: a
decision may place on the fleet as of the last sync, never on one older than the answer it
checked.

The fleet is the one corral.services.fleet.live_fleet reads (hosts with CPU and memory
figures, ordered by name; their live VMs with sizes; a name seen twice gets ``#uuid``;
paused and crashed VMs hold their host like running ones; a protection tier that is a
planning protection is the VM's protection).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, Connection, case, func, select

from corral.engines.planning.model import VM, Fleet, Host, PowerState, Protection
from corral.services.fleet import host_cores
from corral.services.fleet_format import HOLDING_STATES
from corral.store import models as m

if TYPE_CHECKING:
    from corral.inventory.service import Inventory

#: Hosts whose VMs one query reads by id (a bound parameter each); more changed hosts than
#: half the fleet are read as the whole fleet, in one query.
CHUNK = 1000
_HOLDING = frozenset(s.value for s in HOLDING_STATES)
_PROTECTIONS = {p.value: p for p in Protection}

#: A VM row as the fleet needs it: uuid, name, state, vcpus, memory_mib, protection tier.
VMRow = tuple[str, str, str, int, int, str | None]


@dataclass(frozen=True, slots=True)
class _HostEntry:
    """A host's columns as last read, and its planning host (None: no capacity figures)."""

    row: tuple[Any, ...]
    host: Host | None


class LiveFleet:
    """Callable: the inventory's fleet, the same object while the inventory is unchanged."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.reads = 0  # how many times the fleet was read again (a figure for tests)
        self.hosts_read = 0  # how many hosts' VMs were read in all (a figure for tests)
        self._key: tuple[Any, ...] | None = None
        self._fleet: Fleet | None = None
        self._lock = threading.Lock()
        self._hosts: dict[int, _HostEntry] = {}
        self._prints: dict[int, tuple[Any, ...] | None] = {}  # None: no live VM
        self._rows: dict[int, tuple[VMRow, ...]] = {}
        self._vms: dict[int, tuple[VM, ...]] = {}
        self._twice: frozenset[str] = frozenset()

    def __call__(self) -> Fleet:
        key = self.fingerprint()
        with self._lock:
            if self._fleet is None or key != self._key:
                self._fleet = self._read()
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

    # --- the read -----------------------------------------------------------------------------

    def _read(self) -> Fleet:
        """The fleet again: every host's columns, and the VMs of the hosts that changed."""
        with self.inventory.db.session() as session:
            s = session.connection()  # plain rows: no ORM result processing
            hosts = _host_rows(s)
            prints = _host_prints(s)
            changed = [
                i for i in hosts if i not in self._rows or prints.get(i) != self._prints.get(i)
            ]
            rows = _vm_rows(s, changed, whole=len(changed) > len(hosts) // 2)
        self.hosts_read += len(changed)
        for i in set(self._hosts) - set(hosts):
            self._forget(i)
        for i, row in hosts.items():
            entry = self._hosts.get(i)
            if entry is None or entry.row != row:
                self._hosts[i] = _HostEntry(row, _host(row))
        for i in changed:
            self._prints[i] = prints.get(i)
            self._rows[i] = tuple(rows.get(i, ()))
            self._vms.pop(i, None)
        return self._assemble()

    def _forget(self, host_id: int) -> None:
        for held in (self._hosts, self._prints, self._rows, self._vms):
            held.pop(host_id, None)

    def _assemble(self) -> Fleet:
        """The fleet of the hosts with capacity figures, their VMs built again only for the
        hosts read again (or all of them when the names seen twice changed)."""
        usable = sorted(
            ((e.host, i) for i, e in self._hosts.items() if e.host is not None),
            key=lambda pair: pair[0].name,
        )
        seen = Counter(r[1] for _, i in usable for r in self._rows.get(i, ()) if _sized(r))
        twice = frozenset(name for name, n in seen.items() if n > 1)
        if twice != self._twice:
            self._vms.clear()
            self._twice = twice
        vms: list[VM] = []
        for host, i in usable:
            built = self._vms.get(i)
            if built is None:
                built = self._vms[i] = _vms(host.name, self._rows.get(i, ()), twice)
            vms.extend(built)
        return Fleet(tuple(h for h, _ in usable), tuple(vms))


def _host_rows(s: Connection) -> dict[int, tuple[Any, ...]]:
    h = m.Host
    q = select(
        h.id, h.name, h.cpus, h.mhz, h.memory_mib, h.sockets, h.cores_per_socket,
        h.threads_per_core, h.cpu_model, h.cpu_features,
    )  # fmt: skip
    return {r[0]: (*r[1:9], tuple(r[9] or ())) for r in s.execute(q)}


def _live() -> tuple[ColumnElement[bool], ...]:
    v = m.VM
    return v.deleted_at.is_(None), v.is_template.is_(False), v.host_id.is_not(None)


def _host_prints(s: Connection) -> dict[int, tuple[Any, ...]]:
    """Each host's live VMs in a few figures: count, sizes, Corral's writes, last change."""
    v = m.VM
    q = (
        select(
            v.host_id,
            func.count(),
            func.max(v.updated_at),
            func.sum(v.vcpus),
            func.sum(v.memory_mib),
            func.sum(v.meta_version),
            func.sum(case((v.state.in_(sorted(_HOLDING)), 1), else_=0)),
        )
        .where(*_live())
        .group_by(v.host_id)
    )
    return {r[0]: tuple(r[1:]) for r in s.execute(q)}


def _vm_rows(s: Connection, host_ids: Sequence[int], whole: bool) -> dict[int, list[VMRow]]:
    """The live VMs of ``host_ids`` (of every host with ``whole``), by host id."""
    v = m.VM
    cols = select(v.host_id, v.uuid, v.name, v.state, v.vcpus, v.memory_mib, v.protection_tier)
    base = cols.where(*_live())
    if whole:
        queries: Iterable[Any] = [base]
    else:
        ids = list(host_ids)
        queries = [base.where(v.host_id.in_(ids[k : k + CHUNK])) for k in range(0, len(ids), CHUNK)]
    out: dict[int, list[VMRow]] = {}
    wanted = set(host_ids)
    for q in queries:
        for host_id, *row in s.execute(q):
            if host_id in wanted:
                out.setdefault(host_id, []).append(cast(VMRow, tuple(row)))
    return out


def _host(row: tuple[Any, ...]) -> Host | None:
    name, cpus, mhz, memory_mib, sockets, cores_per_socket, threads, cpu_model, features = row
    if not (cpus and mhz and memory_mib):
        return None  # never synced: no capacity to place on
    cores, per_core = host_cores(cpus, sockets, cores_per_socket, threads)
    return Host(
        name,
        cores=cores,
        cpu_mhz=int(mhz),
        memory_mib=int(memory_mib),
        threads_per_core=per_core,
        cpu_model=cpu_model or None,
        features=frozenset(features),
    )


def _vms(host: str, rows: Iterable[VMRow], twice: frozenset[str]) -> tuple[VM, ...]:
    return tuple(
        VM(
            f"{name}#{uuid}" if name in twice else name,
            vcpus,
            memory_mib,
            host=host,
            state=PowerState.running if state in _HOLDING else PowerState.shutoff,
            protection=_PROTECTIONS.get(tier or "", Protection.restart),
        )
        for uuid, name, state, vcpus, memory_mib, tier in filter(_sized, rows)
    )


def _sized(row: VMRow) -> bool:
    return row[3] > 0 and row[4] > 0


__all__ = ["LiveFleet"]
