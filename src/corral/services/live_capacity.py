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

It is the one reader of the live fleet: :meth:`LiveFleet.snapshot` adds the cost/sprawl
records and the ``corral-fleet/1`` document of the same rows (what every ``--live`` command,
the HA manager, alerts and the dashboard read, through corral.services.fleet.live_fleet),
built again only for the hosts read again. The fleet: hosts with CPU and memory figures,
ordered by name; their live VMs with sizes, by name; a name seen twice gets ``#uuid``;
paused and crashed VMs hold their host like running ones; a protection tier that is a
planning protection is the VM's protection. A process shares one reader per inventory
(:func:`shared_fleet`), so each of its readers pays only for what changed since any of them
last looked; the fleet stays the same object while its planning view is unchanged (a
metadata write changes the records only), so the placement state built on it is kept.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Connection, case, func, select

from corral.engines.planning.model import VM, Fleet, Host, PowerState, Protection
from corral.engines.sprawl.model import HostRecord, VMRecord, Volume
from corral.inventory.sync import collector_paused
from corral.services.fleet_entries import (
    DIGITS,
    host_cores,
    host_doc,
    host_record,
    vm_doc,
    volume_doc,
)
from corral.services.fleet_format import FORMAT, HOLDING_STATES
from corral.services.fleet_snapshot import FleetOrigin, FleetSnapshot
from corral.services.records import GIB, vm_record
from corral.store import models as m

if TYPE_CHECKING:
    from corral.inventory.service import Inventory

#: Hosts whose VMs one query reads by id (a bound parameter each); more changed hosts than
#: half the fleet are read as the whole fleet, in one query.
CHUNK = 1000
SOURCE = "live inventory"
_HOLDING = frozenset(s.value for s in HOLDING_STATES)
_PROTECTIONS = {p.value: p for p in Protection}
_V = m.VM
#: A live VM's columns, as a fleet, its records and its document need them.
_VM_COLUMNS = (
    _V.host_id, _V.uuid, _V.name, _V.state, _V.vcpus, _V.memory_mib, _V.protection_tier,
    _V.disks, _V.snapshots, _V.owner, _V.department, _V.purpose, _V.project, _V.environment,
    _V.expires_on, _V.tags, _V.created_at, _V.state_since,
)  # fmt: skip


class _VMRow(NamedTuple):
    """A live VM's columns (those of ``_VM_COLUMNS``, in order) as a plain tuple: the read
    keeps thousands, and a database row's named access is several times slower."""

    host_id: int
    uuid: str
    name: str
    state: str
    vcpus: int
    memory_mib: int
    protection_tier: str | None
    disks: list[Any] | None
    snapshots: list[Any] | None
    owner: str | None
    department: str | None
    purpose: str | None
    project: str | None
    environment: str | None
    expires_on: date | None
    tags: list[Any] | None
    created_at: datetime | None
    state_since: datetime | None


@dataclass(frozen=True, slots=True)
class _HostEntry:
    """A host's columns as last read; its planning host, record and document entry (None:
    no capacity figures, so not in the fleet)."""

    row: tuple[Any, ...]
    host: Host | None
    record: HostRecord | None
    doc: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class _Records:
    """The cost/sprawl side of one read: records and document entries in the fleet's order."""

    key: tuple[int, tuple[Any, ...]]  # (the read it belongs to, the volumes' fingerprint)
    vms: tuple[VMRecord, ...]
    hosts: tuple[HostRecord, ...]
    volumes: tuple[Volume, ...]
    host_docs: tuple[dict[str, Any], ...]
    vm_docs: tuple[dict[str, Any], ...]
    volume_docs: tuple[dict[str, Any], ...]


class LiveFleet:
    """Callable: the inventory's fleet, the same object while its planning view is unchanged;
    :meth:`snapshot` gives it with its records and document."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.reads = 0  # how many times the fleet was read again (a figure for tests)
        self.hosts_read = 0  # how many hosts' VMs were read in all (a figure for tests)
        self._key: tuple[Any, ...] | None = None
        self._fleet: Fleet | None = None
        self._lock = threading.RLock()
        self._hosts: dict[int, _HostEntry] = {}
        self._prints: dict[int, tuple[Any, ...] | None] = {}  # None: no live VM
        self._rows: dict[int, tuple[_VMRow, ...]] = {}  # live VMs with sizes, by host
        self._vms: dict[int, tuple[VM, ...]] = {}
        self._named: dict[int, tuple[tuple[VMRecord, dict[str, Any]], ...]] = {}
        self._twice: frozenset[str] = frozenset()
        self._volumes: tuple[tuple[Any, ...], tuple[Volume, ...]] | None = None
        self._records: _Records | None = None

    def __call__(self) -> Fleet:
        key = self.fingerprint()
        with self._lock:
            if self._fleet is None or key != self._key:
                with collector_paused():  # its many small objects hold no cycle
                    self._fleet = self._read()
                self._key = key
                self.reads += 1
            return self._fleet

    def snapshot(self) -> FleetSnapshot:
        """The fleet with the cost/sprawl records and the ``corral-fleet/1`` document of the
        same read, stamped with the inventory's clock (the records and the document are built
        again only for the hosts read again, the volumes only when they changed)."""
        with self._lock:
            fleet = self()
            volumes = self._read_volumes()
            key = (self.reads, volumes[0])
            done = self._records
            if done is None or done.key != key:
                with collector_paused():  # its many small objects hold no cycle
                    done = self._records = self._build_records(key, volumes[1])
        now = self.inventory.clock()
        document = {
            "format": FORMAT,
            "now": now.isoformat(),
            "hosts": list(done.host_docs),
            "vms": list(done.vm_docs),
            "volumes": list(done.volume_docs),
        }
        return FleetSnapshot(
            fleet, done.vms, done.hosts, done.volumes, now, FleetOrigin.live, SOURCE,
            document=document,
        )  # fmt: skip

    def fingerprint(self) -> tuple[Any, ...]:
        """Hosts and their capacity, VM rows, their sizes, places, states, disks, snapshots and
        last change: two aggregate queries (sums as well as the latest time: two writes within
        one clock tick must not look like none)."""
        h, v = m.Host, m.VM
        with self.inventory.db.session() as s:
            hosts = s.execute(
                select(
                    func.count(h.id),
                    func.max(h.id),
                    *(func.coalesce(func.sum(c), 0) for c in _HOST_SIZES),
                )
            ).one()
            vms = s.execute(
                select(
                    func.count(v.uuid),
                    func.max(v.updated_at),
                    func.coalesce(func.sum(v.host_id), 0),  # a VM moved or gone
                    *(func.coalesce(func.sum(c), 0) for c in _VM_SIZES),
                    func.count(v.deleted_at),
                    func.coalesce(func.sum(case((v.state == "running", 1), else_=0)), 0),
                )
            ).one()
        return (*hosts, *vms)

    # --- the read -----------------------------------------------------------------------------

    def _read(self) -> Fleet:
        """The fleet again: every host's columns, and the VMs of the hosts that changed (or
        were renamed); the fleet already read when its planning view is the same."""
        with self.inventory.db.session() as session:
            s = session.connection()  # plain rows: no ORM result processing
            hosts = _host_rows(s)
            prints = _host_prints(s)
            changed = [
                i
                for i, row in hosts.items()
                if i not in self._rows
                or prints.get(i) != self._prints.get(i)
                or row[0] != self._hosts[i].row[0]
            ]
            rows = _vm_rows(s, changed, whole=len(changed) > len(hosts) // 2)
        self.hosts_read += len(changed)
        moved = bool(set(self._hosts) - set(hosts))
        for i in set(self._hosts) - set(hosts):
            self._forget(i)
        for i, row in hosts.items():
            entry = self._hosts.get(i)
            if entry is None or entry.row != row:
                self._hosts[i] = _host_entry(row)
                moved = True
        for i in changed:
            self._prints[i] = prints.get(i)
            sized = (r for r in rows.get(i, ()) if r.vcpus > 0 and r.memory_mib > 0)
            self._rows[i] = tuple(sorted(sized, key=_by_name))  # the same order however read
            self._named.pop(i, None)
        return self._assemble(set(changed), moved)

    def _forget(self, host_id: int) -> None:
        for held in (self._hosts, self._prints, self._rows, self._vms, self._named):
            held.pop(host_id, None)

    def _usable(self) -> list[tuple[Host, int]]:
        """The hosts with capacity figures, by name, with their ids."""
        return sorted(
            ((e.host, i) for i, e in self._hosts.items() if e.host is not None),
            key=lambda pair: pair[0].name,
        )

    def _assemble(self, stale: set[int], moved: bool) -> Fleet:
        """The fleet of the hosts with capacity figures, their VMs built again only for the
        hosts read again (or all of them when the names seen twice changed)."""
        usable = self._usable()
        seen = Counter(r.name for _, i in usable for r in self._rows.get(i, ()))
        twice = frozenset(name for name, n in seen.items() if n > 1)
        if twice != self._twice:
            self._vms.clear()
            self._named.clear()
            self._twice = twice
            moved = True
        same = not moved and self._fleet is not None
        vms: list[VM] = []
        for host, i in usable:
            built = self._vms.get(i)
            if built is None or i in stale:
                fresh = self._vms[i] = _vms(host.name, self._rows.get(i, ()), twice)
                same = same and fresh == built
                built = fresh
            vms.extend(built)
        if same and self._fleet is not None:
            return self._fleet
        return Fleet(tuple(h for h, _ in usable), tuple(vms))

    # --- the records and the document -----------------------------------------------------------

    def _build_records(
        self, key: tuple[int, tuple[Any, ...]], volumes: Sequence[Volume]
    ) -> _Records:
        usable = self._usable()
        entries = [self._hosts[i] for _, i in usable]
        named = [x for _, i in usable for x in self._named_vms(i)]
        known = {h.name for h, _ in usable}
        kept = tuple(v for v in volumes if v.host in known)
        return _Records(
            key,
            vms=tuple(r for r, _ in named),
            hosts=tuple(cast(HostRecord, e.record) for e in entries),
            volumes=kept,
            host_docs=tuple(cast(dict[str, Any], e.doc) for e in entries),
            vm_docs=tuple(d for _, d in named),
            volume_docs=tuple(volume_doc(v) for v in kept),
        )

    def _named_vms(self, host_id: int) -> tuple[tuple[VMRecord, dict[str, Any]], ...]:
        """A host's VM records, named as in the fleet, with their document entries."""
        done = self._named.get(host_id)
        if done is None:
            entry = self._hosts[host_id]
            done = self._named[host_id] = tuple(
                _named(vm_record(r, entry.row[0], DIGITS), r, self._twice)
                for r in self._rows.get(host_id, ())
            )
        return done

    def _read_volumes(self) -> tuple[tuple[Any, ...], tuple[Volume, ...]]:
        """The volumes no VM uses, read again only when their count, ids or sizes changed."""
        vol = m.Volume
        unused = vol.used_by.is_(None)
        with self.inventory.db.session() as session:
            s = session.connection()
            key = tuple(
                s.execute(
                    select(
                        func.count(vol.id),
                        func.coalesce(func.sum(vol.id), 0),
                        func.coalesce(func.sum(vol.capacity_bytes), 0),
                        func.coalesce(func.sum(vol.pool_id), 0),
                    ).where(unused)
                ).one()
            )
            if self._volumes is None or self._volumes[0] != key:
                q = (
                    select(vol.path, vol.capacity_bytes, m.Host.name, vol.first_seen_at)
                    .join(m.Pool, vol.pool_id == m.Pool.id)
                    .join(m.Host, m.Pool.host_id == m.Host.id)
                    .where(unused)
                    .order_by(vol.id)
                )
                found = tuple(
                    Volume(path, round(size / GIB, DIGITS), None, host, first_seen)
                    for path, size, host, first_seen in s.execute(q)
                )
                self._volumes = (key, found)
        return self._volumes


_SHARED: weakref.WeakKeyDictionary[Inventory, LiveFleet] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def shared_fleet(inventory: Inventory) -> LiveFleet:
    """The process's one reader of this inventory's fleet: every service, page and command
    given the same inventory reads only what changed since any of them last read."""
    with _SHARED_LOCK:
        live = _SHARED.get(inventory)
        if live is None:
            live = _SHARED[inventory] = LiveFleet(inventory)
        return live


#: Summed over the fleet: a host's sizes and topology.
_H = m.Host
_HOST_SIZES = (_H.cpus, _H.memory_mib, _H.mhz, _H.threads_per_core, _H.sockets, _H.cores_per_socket)
#: Summed per host and over the fleet: a VM's sizes, Corral's metadata writes, its devices.
_VM_SIZES = (_V.vcpus, _V.memory_mib, _V.meta_version, _V.disk_bytes, _V.snapshot_count)


def _host_rows(s: Connection) -> dict[int, tuple[Any, ...]]:
    h = m.Host
    q = select(
        h.id, h.name, h.cpus, h.mhz, h.memory_mib, h.sockets, h.cores_per_socket,
        h.threads_per_core, h.cpu_model, h.cpu_features,
    )  # fmt: skip
    return {r[0]: (*r[1:9], tuple(r[9] or ())) for r in s.execute(q)}


def _live() -> tuple[ColumnElement[bool], ...]:
    return _V.deleted_at.is_(None), _V.is_template.is_(False), _V.host_id.is_not(None)


def _host_prints(s: Connection) -> dict[int, tuple[Any, ...]]:
    """Each host's live VMs in a few figures: count, sizes, Corral's writes, devices, last
    change."""
    q = (
        select(
            _V.host_id,
            func.count(),
            func.max(_V.updated_at),
            *(func.sum(c) for c in _VM_SIZES),
            func.sum(case((_V.state.in_(sorted(_HOLDING)), 1), else_=0)),
        )
        .where(*_live())
        .group_by(_V.host_id)
    )
    return {cast(int, r[0]): tuple(r[1:]) for r in s.execute(q)}


def _vm_rows(s: Connection, host_ids: Sequence[int], whole: bool) -> dict[int, list[_VMRow]]:
    """The live VMs of ``host_ids`` (of every host with ``whole``), by host id."""
    base = select(*_VM_COLUMNS).where(*_live())
    if whole:
        queries: Iterable[Any] = [base]
    else:
        ids = list(host_ids)
        queries = [
            base.where(_V.host_id.in_(ids[k : k + CHUNK])) for k in range(0, len(ids), CHUNK)
        ]
    out: dict[int, list[_VMRow]] = {}
    wanted = set(host_ids)
    for q in queries:
        for row in s.execute(q):
            if row[0] in wanted:
                out.setdefault(row[0], []).append(_VMRow(*row))
    return out


def _host_entry(row: tuple[Any, ...]) -> _HostEntry:
    name, cpus, mhz, memory_mib, sockets, cores_per_socket, threads, cpu_model, features = row
    if not (cpus and mhz and memory_mib):
        return _HostEntry(row, None, None, None)  # never synced: no capacity to place on
    cores, per_core = host_cores(cpus, sockets, cores_per_socket, threads)
    doc = host_doc(name, cores, per_core, int(mhz), int(memory_mib), cpu_model, features)
    host = Host(
        name,
        cores=cores,
        cpu_mhz=int(mhz),
        memory_mib=int(memory_mib),
        threads_per_core=per_core,
        cpu_model=cpu_model or None,
        features=frozenset(features),
    )
    return _HostEntry(row, host, host_record(doc), doc)


def _by_name(row: _VMRow) -> tuple[str, str]:
    return row.name, row.uuid


def _name(row: _VMRow, twice: frozenset[str]) -> str:
    return f"{row.name}#{row.uuid}" if row.name in twice else str(row.name)


def _vms(host: str, rows: Iterable[_VMRow], twice: frozenset[str]) -> tuple[VM, ...]:
    return tuple(
        VM(
            _name(r, twice),
            r.vcpus,
            r.memory_mib,
            host=host,
            state=PowerState.running if r.state in _HOLDING else PowerState.shutoff,
            protection=_PROTECTIONS.get(r.protection_tier or "", Protection.restart),
        )
        for r in rows
    )


def _named(record: VMRecord, row: _VMRow, twice: frozenset[str]) -> tuple[VMRecord, dict[str, Any]]:
    if row.name in twice:
        record = replace(record, name=_name(row, twice))
    return record, vm_doc(record, row.protection_tier)


__all__ = ["CHUNK", "SOURCE", "LiveFleet", "shared_fleet"]
