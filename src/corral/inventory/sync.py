"""Inventory sync: read every host, reconcile with the store, record every change as an event.

Idempotent and incremental: an unchanged domain costs one fingerprint
comparison. A VM that leaves one host and appears on another is *migrated*
(same identity), never deleted and re-created. A host that does not answer is
marked unreachable and nothing of it is touched: its VMs keep their last known
state. A VM gone from a host that did answer becomes a tombstone.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, false, or_, select, update
from sqlalchemy.orm import Session, undefer

from corral.domain.model import EventKind, HostInventory, HostStatus, PoolFacts, VMFacts, VMState
from corral.errors import CorralError, NotFoundError
from corral.hypervisor import deadline
from corral.hypervisor.base import Hypervisor
from corral.inventory.diff import Change, Stored, diff_vm
from corral.inventory.netusers import NetworkUsers
from corral.inventory.records import META_FIELDS, facts_columns, meta_to_columns, row_meta
from corral.inventory.storage import PoolRef, VMRef, VolumeRef, attribute, storage_key, vm_paths
from corral.store import models as m
from corral.store.bulk import bulk_insert, bulk_update, one_of
from corral.store.db import Database

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Connector = Callable[[m.Host], Hypervisor]
Releaser = Callable[..., None]
Progress = Callable[[str, int, int], None]

#: The tables a sync writes, whose statistics a large change refreshes.
_WRITTEN = tuple(t.__tablename__ for t in (m.Host, m.VM, m.Pool, m.Volume, m.Network, m.Event))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class HostResult:
    host: str
    status: str
    error: str | None = None
    vms_seen: int = 0
    vms_changed: int = 0


@dataclass
class SyncReport:
    started_at: datetime
    finished_at: datetime | None = None
    hosts: list[HostResult] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)

    def count_of(self, kind: str) -> int:
        return self.events.get(kind, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "hosts": [vars(h) for h in self.hosts],
            "events": dict(sorted(self.events.items())),
        }


@dataclass
class _Observed:
    host: m.Host
    inventory: HostInventory | None
    error: str | None
    duplicate_of: str | None = None
    rows: dict[str, _Columns] = field(default_factory=dict)  # by UUID: see _Read


@dataclass(frozen=True, slots=True)
class _Columns:
    """A read VM's row columns: those its facts give, and those of its metadata."""

    facts: dict[str, Any]
    meta: dict[str, Any]
    paths: tuple[str, ...]  # the files its disks and snapshots name (see storage.vm_paths)


@dataclass(frozen=True, slots=True)
class _Read:
    """One host's answer, with the row columns of each VM it reported (not the unchanged
    ones) already built by the thread that read it: that work overlaps the other hosts'
    reads instead of following the last of them."""

    inventory: HostInventory
    rows: dict[str, _Columns]

    @classmethod
    def of(cls, inv: HostInventory) -> _Read:
        return cls(inv, {f.uuid: _columns(f) for f in inv.vms})


def _columns(facts: VMFacts) -> _Columns:
    meta = meta_to_columns(facts.meta) if not facts.meta.is_empty() else {}
    cols = facts_columns(facts)
    return _Columns(cols, meta, vm_paths(cols["disks"], cols["snapshots"]))


class SyncService:
    def __init__(
        self,
        db: Database,
        connector: Connector,
        release: Releaser,
        clock: Clock = utcnow,
        *,
        timeout_s: float = 15.0,
        scope: str = "sync:",
    ) -> None:
        self.db = db
        self.connector = connector
        self.release = release
        self.clock = clock
        self.timeout_s = timeout_s
        self.scope = scope  # keys a late read by (see corral.hypervisor.deadline)

    def sync(
        self, host_names: Iterable[str] | None = None, progress: Progress | None = None
    ) -> SyncReport:
        """Sync the named hosts (all when None) in one transaction; return what happened."""
        report = SyncReport(started_at=self.clock())
        with collector_paused(), self.db.session() as s:
            hosts = _hosts(s, host_names)
            held = _Held.of(s, hosts)
            reconciler = _Reconciler(s, self.clock, report, held, hosts)
            observed = self._read_all(hosts, held.fingerprints, progress, reconciler.arrive)
            reconciler.run(observed)
        if report.count_of("created") + report.count_of("deleted") >= 1000:
            self.db.analyze(_WRITTEN)
        report.finished_at = self.clock()
        return report

    def _read_all(
        self,
        hosts: list[m.Host],
        known: dict[int, dict[str, str]],
        progress: Progress | None,
        arrived: Callable[[_Observed], None],
    ) -> list[_Observed]:
        """Read hosts concurrently, each within the timeout; one slow or dead host never stops
        the others, nor the sync from ending (see corral.hypervisor.deadline). Each answer is
        handed to ``arrived`` at once, in this thread, while the other hosts are being read."""
        by_key = {f"{self.scope}{h.name}": h for h in hosts}

        # Test-driver hosts are read in this process, not by a daemon. Opening one is libvirt's
        # work (its node file parsed, without the interpreter lock); reading it is Python's.
        # So they open one more at a time than there are CPUs, and read one at a time: the
        # opens keep the other CPUs busy while one host is read, and two reads never fight
        # over the lock (20 hosts of 500 VMs: reads 3.5-4.0 s, against 4.4 s when each of
        # two threads both opened and read, 6.3 s one by one). Remote hosts are waited on,
        # so many of them are read at once.
        in_process = {key for key, h in by_key.items() if h.uri.startswith("test:")}
        lane = threading.Lock()

        def reader(host: m.Host) -> Callable[[], _Read]:
            def read() -> _Read:
                hv = self.connector(host)
                if not host.uri.startswith("test:"):
                    return _Read.of(hv.read_inventory(known[host.id]))
                with lane:
                    return _Read.of(hv.read_inventory(known[host.id]))

            return read

        results: list[_Observed] = []

        def observed(out: deadline.Outcome[_Read]) -> None:
            results.append(self._observation(by_key[out.key], out))
            arrived(results[-1])
            if progress:
                progress(results[-1].host.name, len(results), len(hosts))

        tasks = {key: reader(h) for key, h in by_key.items()}
        deadline.run_all(
            tasks,
            self.timeout_s,
            narrow=in_process,
            narrow_parallel=(os.cpu_count() or 1) + 1,
            on_outcome=observed,
        )
        return sorted(results, key=lambda o: o.host.name)

    def _observation(self, host: m.Host, out: deadline.Outcome[_Read]) -> _Observed:
        if out.status is deadline.Status.DONE and out.error is None:
            assert out.value is not None
            return _Observed(host, out.value.inventory, None, rows=out.value.rows)
        if out.status is deadline.Status.BUSY:
            return _Observed(host, None, "the host has not yet answered an earlier request.")
        if out.status is deadline.Status.LATE:
            self.release(host.name, late=True)
            return _Observed(host, None, f"the host did not answer within {self.timeout_s:g} s.")
        if isinstance(out.error, CorralError):
            self.release(host.name, broken=True)
            return _Observed(host, None, out.error.message)
        assert out.error is not None
        raise out.error


@dataclass(frozen=True, slots=True)
class _Held:
    """What the store held of the hosts' live VMs before the reads."""

    fingerprints: dict[int, dict[str, str]]  # per host, by UUID: a VM read the same is unchanged
    versions: dict[str, int]  # metadata versions, by UUID
    running: frozenset[str]  # stored running: so is a copy unchanged since

    @classmethod
    def of(cls, s: Session, hosts: list[m.Host]) -> _Held:
        ids = [h.id for h in hosts]
        fingerprints: dict[int, dict[str, str]] = {i: {} for i in ids}
        versions: dict[str, int] = {}
        running: set[str] = set()
        rows = s.execute(
            select(m.VM.host_id, m.VM.uuid, m.VM.fingerprint, m.VM.meta_version, m.VM.state).where(
                m.VM.host_id.in_(ids), m.VM.deleted_at.is_(None)
            )
        )
        for host_id, uuid, fp, version, state in rows:
            if host_id is not None:
                fingerprints[host_id][uuid] = fp
                versions[uuid] = version
                if state == VMState.running.value:
                    running.add(uuid)
        return cls(fingerprints, versions, frozenset(running))


@dataclass(frozen=True, slots=True)
class _Early:
    """A VM created as soon as its host answered (see _Reconciler.arrive)."""

    host: m.Host
    row: dict[str, Any]  # its columns, as _create gives them
    changes: list[Change]
    paths: tuple[str, ...]


class _Reconciler:
    """Applies observations to the store inside one session.

    Each host's answer is taken as it arrives (``arrive``), while the other hosts are still
    being read: its VMs that neither the store nor any answer before it holds are created at
    once, and on PostgreSQL their rows written at once, so that the writing of a first sync
    overlaps the reads instead of following the last of them. Everything else waits for
    ``run``, which has every answer: it decides which host holds a VM that two hosts
    reported, as if nothing had been done early, and takes back an early creation whose host
    turned out not to be the VM's (another host's running copy won it, or the host was a
    second registration of another).
    """

    def __init__(
        self,
        s: Session,
        clock: Clock,
        report: SyncReport,
        held: _Held,
        hosts: list[m.Host],
    ) -> None:
        self.s = s
        self.clock = clock
        self.now: datetime = datetime.min  # set when the first answer arrives (see _started)
        self.started = False
        self.report = report
        self.held = held  # before the reads
        # Hosts read for the first time in this sync: their VMs were there before Corral.
        self.first_sync = {h.id for h in hosts if h.last_sync_at is None}
        # Early rows are written as they are made on PostgreSQL, which locks rows; SQLite's
        # one write lock would be held through the remaining reads: they wait for run().
        self.write_early = s.get_bind().dialect.name == "postgresql"
        self.early: dict[str, _Early] = {}  # by UUID
        # Whether the store held no VM (a first sync): then it holds none of the VMs the
        # answers bring, and is not asked. Known once an answer brings a VM it does not know.
        self.store_was_empty: bool | None = None
        # New rows go in as one multi-row insert each, not one ORM object per row: a first
        # sync creates thousands (see benchmarks/bench_inventory_sync.py).
        self.new_vms: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        # The files of the VMs written here, for the volumes' attribution.
        self.paths: dict[str, tuple[str, ...]] = {}
        # Whether anything the attribution of volumes to VMs reads has moved in this sync (a
        # VM's files, host or life; a pool or volume come, gone or moved): if not, the stored
        # attribution stands and is not judged again over the whole fleet.
        self.layout_moved = False
        # The volumes of pools seen for the first time: inserted after the attribution, with
        # their users, rather than inserted, read back and updated (a first sync's thousands).
        self.new_volumes: list[dict[str, Any]] = []

    def _started(self) -> None:
        """The sync's time: when the first host answered (or the reads ended, none did)."""
        if not self.started:
            self.now, self.started = self.clock(), True

    def arrive(self, o: _Observed) -> None:
        """One host's answer, as it arrives: create its VMs that are new to the store and
        to every answer so far. Those another host reported first, and those the store
        holds, wait for run()."""
        self._started()
        if o.inventory is None:
            return
        known = self.held.fingerprints[o.host.id]
        fresh = [f for f in o.inventory.vms if f.uuid not in known and f.uuid not in self.early]
        if fresh and self.store_was_empty is None:
            self.store_was_empty = self.s.scalar(select(m.VM.uuid).limit(1)) is None
        stored = set() if self.store_was_empty else self._stored_uuids([f.uuid for f in fresh])
        rows = []
        for facts in fresh:
            if facts.uuid in stored:
                continue  # a tombstone, or a VM another host held: run() loads and locks it
            built = o.rows.get(facts.uuid) or _columns(facts)
            row, changes = self._created(facts, o.host, built)
            self.early[facts.uuid] = _Early(o.host, row, changes, built.paths)
            rows.append(row)
        if self.write_early:
            bulk_insert(self.s, m.VM, rows)

    def run(self, observed: list[_Observed]) -> None:
        self._started()
        _lock_for_writing(self.s)
        observed = _without_duplicates(observed)
        reachable = [o for o in observed if o.inventory is not None]
        seen = _holders(reachable, self.held.running)
        self._take_back([uuid for uuid, e in self.early.items() if seen.get(uuid) is not e.host])
        users = NetworkUsers(self.s, [o.host for o in reachable], seen, self.held.fingerprints)
        results: dict[str, HostResult] = {}
        changed_hosts: set[int] = set()
        for o in observed:
            res = HostResult(o.host.name, HostStatus.ok.value)
            results[o.host.name] = res
            if o.duplicate_of is not None:
                self._mark_duplicate(o.host, o.duplicate_of, res)
                continue
            if o.inventory is None:
                self._mark_unreachable(o.host, o.error or "no answer", res)
                continue
            self._mark_reachable(o.host, o.inventory)
            res.vms_seen = len(o.inventory.vms) + len(o.inventory.unchanged)
        # Observed VMs across all hosts first, so a migration is seen as one.
        for o in reachable:
            assert o.inventory is not None
            rows = self._load(v.uuid for v in o.inventory.vms if v.uuid not in self.early)
            users.applying(o.host, o.inventory, rows)
            for facts in o.inventory.vms:
                if seen.get(facts.uuid) is not o.host:
                    continue  # listed on two hosts mid-migration: the other copy wins
                early = self.early.get(facts.uuid)
                if early is not None:
                    self._keep(facts.uuid, early)
                elif not self._apply(
                    rows.get(facts.uuid), facts, o.host, o.rows.get(facts.uuid) or _columns(facts)
                ):
                    continue
                results[o.host.name].vms_changed += 1
                changed_hosts.add(o.host.id)
        self._insert(m.VM, self.new_vms)
        gone = self._tombstone_missing([o.host for o in reachable], seen)
        for o in reachable:
            results[o.host.name].vms_changed += gone[o.host.id]
            if gone[o.host.id]:
                changed_hosts.add(o.host.id)
        storage_moved = False
        for o in reachable:
            assert o.inventory is not None
            storage_moved |= self._sync_storage(o.host, o.inventory)
        if (storage_moved or changed_hosts) and (self.layout_moved or self._stale_users()):
            self._attribute_volumes()
        self._insert(m.Volume, self.new_volumes)
        users.write()
        self._insert(m.Event, self.events)
        self.report.hosts = [results[o.host.name] for o in observed]

    def _insert(self, model: type[m.Base], rows: list[dict[str, Any]]) -> None:
        bulk_insert(self.s, model, rows)
        rows.clear()

    # -- hosts ----------------------------------------------------------------
    def _mark_unreachable(self, host: m.Host, error: str, res: HostResult) -> None:
        res.status = HostStatus.unreachable.value
        res.error = error
        if host.status != HostStatus.unreachable.value:
            self._event(EventKind.host_unreachable, None, host.name, {"error": error})
        host.status = HostStatus.unreachable.value
        host.last_error = error

    def _mark_duplicate(self, host: m.Host, first: str, res: HostResult) -> None:
        """Not read at all: its VMs are the first host's, and reading them twice made them
        "migrate" between the two names on every sync."""
        res.status = host.status = HostStatus.duplicate.value
        res.error = host.last_error = (
            f"the same libvirt host as {first!r}, registered first; remove one of them "
            "('corral hosts remove')."
        )

    def _mark_reachable(self, host: m.Host, inv: HostInventory) -> None:
        if host.status == HostStatus.unreachable.value:
            self._event(EventKind.host_reachable, None, host.name, {})
        host.status = HostStatus.ok.value
        host.last_error = None
        host.last_sync_at = self.now
        f = inv.host
        host.host_uuid = f.uuid
        host.hostname = f.hostname
        host.cpu_model = f.cpu_model
        host.cpu_vendor = f.cpu_vendor
        host.cpu_features = list(f.cpu_features)
        host.sockets = f.sockets
        host.cores_per_socket = f.cores_per_socket
        host.threads_per_core = f.threads_per_core
        host.cpus = f.cpus
        host.mhz = f.mhz
        host.memory_mib = f.memory_mib
        host.arch = f.arch
        host.hypervisor_type = f.hypervisor_type
        host.hypervisor_version = f.hypervisor_version
        host.libvirt_version = f.libvirt_version

    # -- VMs ------------------------------------------------------------------
    def _load(self, uuids: Iterable[str]) -> dict[str, m.VM]:
        """The stored rows of these VMs (tombstones too), devices included; a UUID without a
        row is a VM Corral has never seen. Only these rows are read, never the fleet's."""
        ids = sorted(set(uuids))
        out: dict[str, m.VM] = {}
        # Locked until the sync commits (PostgreSQL; SQLite holds its write lock already): a
        # metadata write waits, or is waited for, never lands between a read and a write here.
        q = (
            select(m.VM)
            .options(undefer(m.VM.disks), undefer(m.VM.nics), undefer(m.VM.snapshots))
            .order_by(m.VM.uuid)
            .with_for_update()
        )
        with self.s.no_autoflush:
            for uuids in one_of(self.s, m.VM.uuid, ids):
                for row in self.s.scalars(q.where(uuids)):
                    out[row.uuid] = row
        return out

    def _stored_uuids(self, uuids: list[str]) -> set[str]:
        """Which of these VMs the store has a row of (a tombstone too)."""
        out: set[str] = set()
        for cond in one_of(self.s, m.VM.uuid, uuids):
            out.update(self.s.scalars(select(m.VM.uuid).where(cond)))
        return out

    def _created(
        self, facts: VMFacts, host: m.Host, built: _Columns
    ) -> tuple[dict[str, Any], list[Change]]:
        """The row of a VM the store has never held, and the change it makes."""
        row = self._create(facts, host, built.meta, built.facts)
        changes = diff_vm(None, facts, host.name, built.meta)
        if host.id in self.first_sync:
            changes[0].details["discovered"] = True  # there before Corral first looked
        return row, changes

    def _keep(self, uuid: str, early: _Early) -> None:
        """An early creation stands (its host holds the VM): it counts as made here."""
        if not self.write_early:
            self.new_vms.append(early.row)
        self.layout_moved = True
        self.paths[uuid] = early.paths
        for c in early.changes:
            self._event(c.kind, uuid, early.host.name, c.details)

    def _take_back(self, uuids: list[str]) -> None:
        """Forget early creations whose host did not turn out to hold the VM, and delete the
        rows already written: their VMs are applied by run() from the host that holds them,
        as though never created early. (Rare: a VM new to Corral seen on two hosts.)"""
        for uuid in uuids:
            del self.early[uuid]
        if self.write_early:
            for cond in one_of(self.s, m.VM.uuid, sorted(uuids)):
                self.s.execute(
                    delete(m.VM).where(cond), execution_options={"synchronize_session": False}
                )

    def _apply(self, row: m.VM | None, facts: VMFacts, host: m.Host, built: _Columns) -> bool:
        """Create or update one VM row from its columns (``built``); True when anything
        changed."""
        meta_cols = built.meta
        if row is not None and meta_cols and not self._meta_is_current(row, facts):
            meta_cols = {}  # a metadata write committed after this domain was read: it wins
        if row is None:
            new, changes = self._created(facts, host, built)
            self.new_vms.append(new)
            self.layout_moved = True
            self.paths[facts.uuid] = built.paths
        else:
            files_before = _files_of(row)
            changes = diff_vm(self._stored(row), facts, host.name, meta_cols)
            if row.state != facts.state.value:
                row.state_since = self.now
            row.deleted_at = None
            row.host_id = host.id
            for k, v in meta_cols.items():
                setattr(row, k, v)
            if meta_cols and facts.meta_revision is not None:
                row.meta_version = max(row.meta_version, facts.meta_revision)
            cols = built.facts
            if not self.layout_moved:
                self.layout_moved = (host.id, built.paths) != files_before
            for k, v in cols.items():
                setattr(row, k, v)
            self.paths[facts.uuid] = built.paths
            if changes:
                row.updated_at = self.now
        for c in changes:
            self._event(c.kind, facts.uuid, host.name, c.details)
        return bool(changes)

    def _meta_is_current(self, row: m.VM, facts: VMFacts) -> bool:
        """Whether the domain's metadata may replace the stored one.

        A stamped domain is current unless Corral committed a newer version since (the domain
        was read before that write). An unstamped one (edited by hand) is current unless
        Corral wrote this VM's metadata while the hosts were being read.
        """
        if facts.meta_revision is not None:
            return facts.meta_revision >= row.meta_version
        return row.meta_version == self.held.versions.get(row.uuid, row.meta_version)

    def _create(
        self, facts: VMFacts, host: m.Host, meta_cols: dict[str, Any], cols: dict[str, Any]
    ) -> dict[str, Any]:
        """The columns of a new VM row; every row carries the same keys (one insert)."""
        created = self.now
        if facts.meta.created_on:
            created = datetime.combine(facts.meta.created_on, datetime.min.time(), tzinfo=UTC)
        return {
            **dict.fromkeys(META_FIELDS),
            "tags": [],
            **meta_cols,
            **cols,
            "uuid": facts.uuid,
            "host_id": host.id,
            "state_since": self.now,
            "created_at": min(created, self.now),
            "first_seen_at": self.now,
            "updated_at": self.now,
            "deleted_at": None,
            "meta_version": facts.meta_revision or 0,
        }

    def _stored(self, row: m.VM) -> Stored:
        return Stored(
            host=row.host.name if row.host else None,
            name=row.name,
            state=row.state,
            vcpus=row.vcpus,
            memory_max_mib=row.memory_max_mib,
            memory_mib=row.memory_mib,
            snapshot_names=frozenset(s["name"] for s in row.snapshots or []),
            disks=row.disks or [],
            nics=row.nics or [],
            meta=row_meta(row),
            deleted=row.deleted_at is not None,
        )

    def _tombstone_missing(self, hosts: list[m.Host], seen: dict[str, m.Host]) -> dict[int, int]:
        """Tombstone the live VMs of these hosts that no host reported; how many, per host."""
        ids = [h.id for h in hosts]
        missing: dict[int, list[str]] = {i: [] for i in ids}
        for on_hosts in one_of(self.s, m.VM.host_id, ids):
            q = select(m.VM.host_id, m.VM.uuid).where(on_hosts, m.VM.deleted_at.is_(None))
            for host_id, uuid in self.s.execute(q):
                if uuid not in seen and host_id is not None:
                    missing[host_id].append(uuid)
        rows = self._load(u for uuids in missing.values() for u in uuids)
        for host in hosts:
            for uuid in sorted(missing[host.id]):
                row = rows[uuid]
                row.deleted_at = self.now
                row.updated_at = self.now
                self.layout_moved = True
                self._event(EventKind.deleted, row.uuid, host.name, {"name": row.name})
        return {i: len(uuids) for i, uuids in missing.items()}

    # -- storage and networks -------------------------------------------------
    def _sync_storage(self, host: m.Host, inv: HostInventory) -> bool:
        """Store the host's pools, volumes and networks; False when nothing moved."""
        fp = _storage_fingerprint(inv.pools, inv.networks)
        if fp == host.storage_fingerprint:
            return False
        host.storage_fingerprint = fp
        pools = {p.name: p for p in host.pools}
        for pf in inv.pools:
            pool = pools.pop(pf.name, None)
            new = pool is None
            if pool is None:
                pool = m.Pool(name=pf.name)
                host.pools.append(pool)
            key = storage_key(pf)
            self.layout_moved |= new or (pool.storage_key, pool.path) != (key, pf.path)
            pool.uuid, pool.type, pool.path, pool.active = pf.uuid, pf.type, pf.path, pf.active
            pool.capacity_bytes = pf.capacity_bytes
            pool.allocation_bytes = pf.allocation_bytes
            pool.available_bytes = pf.available_bytes
            pool.storage_key = key
            if new:
                self._insert_volumes(pool, pf)
                continue
            vols = {v.name: v for v in pool.volumes}
            for vf in pf.volumes:
                vol = vols.pop(vf.name, None)
                if vol is None:
                    vol = m.Volume(name=vf.name, first_seen_at=self.now)
                    pool.volumes.append(vol)
                    self.layout_moved = True
                self.layout_moved |= (vol.path, vol.backing_path) != (vf.path, vf.backing_path)
                vol.path, vol.format, vol.backing_path = vf.path, vf.format, vf.backing_path
                vol.capacity_bytes, vol.allocation_bytes = vf.capacity_bytes, vf.allocation_bytes
            for gone in vols.values():
                pool.volumes.remove(gone)
                self.layout_moved = True
        for gone_pool in pools.values():
            host.pools.remove(gone_pool)
            self.layout_moved = True
        nets = {n.name: n for n in host.networks}
        for nf in inv.networks:
            net = nets.pop(nf.name, None)
            if net is None:
                net = m.Network(name=nf.name)
                host.networks.append(net)
            net.uuid, net.active, net.bridge, net.forward_mode = (
                nf.uuid,
                nf.active,
                nf.bridge,
                nf.forward_mode,
            )
        for gone_net in nets.values():
            host.networks.remove(gone_net)
        return True

    def _insert_volumes(self, pool: m.Pool, pf: PoolFacts) -> None:
        """A pool seen for the first time: its volumes go in one insert (thousands, often),
        once the attribution has named their users."""
        self.s.flush()  # the pool's id
        self.new_volumes += [
            {
                "pool_id": pool.id,
                "name": vf.name,
                "path": vf.path,
                "format": vf.format,
                "backing_path": vf.backing_path,
                "capacity_bytes": vf.capacity_bytes,
                "allocation_bytes": vf.allocation_bytes,
                "used_by": None,
                "first_seen_at": self.now,
            }
            for vf in pf.volumes
        ]

    def _stale_users(self) -> bool:
        """Whether a volume is held by a VM that no longer lives on a host (its host was
        removed, or the VM deleted outside a sync): its attribution must be judged again."""
        self.s.flush()
        q = (
            select(m.Volume.id)
            .outerjoin(m.VM, m.VM.uuid == m.Volume.used_by)
            .where(
                m.Volume.used_by.is_not(None),
                or_(m.VM.uuid.is_(None), m.VM.deleted_at.is_not(None), m.VM.host_id.is_(None)),
            )
            .limit(1)
        )
        return self.s.execute(q).first() is not None

    def _attribute_volumes(self) -> None:
        """Which VM uses each volume, judged against every host's VMs (shared storage)."""
        self.s.flush()
        pools = [
            PoolRef(i, h, k or f"pool:{i}", p)  # no key yet: stored before keys existed
            for i, h, k, p in self.s.execute(
                select(m.Pool.id, m.Pool.host_id, m.Pool.storage_key, m.Pool.path)
            )
        ]
        rows = self.s.execute(
            select(
                m.Volume.id,
                m.Volume.pool_id,
                m.Volume.path,
                m.Volume.backing_path,
                m.Volume.used_by,
            )
        ).all()
        stored = [VolumeRef(i, p, path, b) for i, p, path, b, _ in rows]
        new = [  # not inserted yet: numbered below zero, where no stored id is
            VolumeRef(-n, v["pool_id"], v["path"], v["backing_path"])
            for n, v in enumerate(self.new_volumes, 1)
        ]
        users = attribute(pools, stored + new, self._vm_refs())
        for ref, row in zip(new, self.new_volumes, strict=True):
            row["used_by"] = users[ref.id]
        changed = [{"id": i, "used_by": users[i]} for i, *_, old in rows if users[i] != old]
        if changed:
            bulk_update(self.s, m.Volume, "id", changed)

    def _vm_refs(self) -> list[VMRef]:
        """Every live VM's disk and snapshot paths: those this sync wrote from memory, the
        others' from the store (all of them at once when most are there)."""
        live = self.s.execute(
            select(m.VM.uuid, m.VM.host_id).where(
                m.VM.deleted_at.is_(None), m.VM.host_id.is_not(None)
            )
        ).all()
        paths = dict(self.paths)
        missing = [uuid for uuid, _ in live if uuid not in paths]
        q = select(m.VM.uuid, m.VM.disks, m.VM.snapshots)
        if len(missing) > len(live) // 2:
            missing_set = set(missing)
            chunks = [q.where(m.VM.deleted_at.is_(None), m.VM.host_id.is_not(None))]
        else:
            missing_set = None
            chunks = [q.where(uuids) for uuids in one_of(self.s, m.VM.uuid, missing)]
        for chunk in chunks:
            for uuid, disks, snaps in self.s.execute(chunk):
                if missing_set is None or uuid in missing_set:
                    paths[uuid] = vm_paths(disks or [], snaps or [])
        return [
            VMRef(uuid, host_id, paths[uuid])
            for uuid, host_id in live
            if host_id is not None  # never: the query asks for placed VMs (for the type)
        ]

    def _event(
        self, kind: EventKind, vm: str | None, host: str | None, details: dict[str, Any]
    ) -> None:
        self.events.append(
            {
                "at": self.now,
                "kind": kind.value,
                "vm_uuid": vm,
                "host_name": host,
                "details": details,
            }
        )
        self.report.events[kind.value] = self.report.events.get(kind.value, 0) + 1


_pauses = 0  # syncs running in this process
_turned_off = False  # whether the first of them turned the collector off (it was on)
_pauses_lock = threading.Lock()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while syncs (or other bulk reads, such as the live
    fleet's) run in this process, on again after the last one ends.

    A first sync makes tens of thousands of objects that live until it ends; each full
    collection walks all of them for nothing (none is in a cycle): 8 % of a 10,000-VM first
    sync's CPU, a quarter of its writing's (benchmarks/bench_inventory_sync.py). Reference
    counting frees everything else as before.
    """
    global _pauses, _turned_off
    with _pauses_lock:
        if _pauses == 0:
            _turned_off = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pauses_lock:
            _pauses -= 1
            if _pauses == 0 and _turned_off:
                gc.enable()


def _files_of(row: m.VM) -> tuple[int | None, tuple[str, ...]] | None:
    """What the attribution of volumes reads of a stored VM: its host and files while it
    lives (None once it is a tombstone)."""
    if row.deleted_at is not None:
        return None
    return row.host_id, vm_paths(row.disks or [], row.snapshots or [])


def _hosts(s: Session, names: Iterable[str] | None) -> list[m.Host]:
    """The named hosts (all when None), by name; only their rows are read, so a round over a
    few hosts of a large fleet costs what those few cost."""
    q = select(m.Host).order_by(m.Host.name)
    if names is None:
        return list(s.scalars(q))
    wanted = sorted(set(names))
    hosts: list[m.Host] = []
    for named in one_of(s, m.Host.name, wanted):
        hosts += s.scalars(q.where(named))
    unknown = set(wanted) - {h.name for h in hosts}
    if unknown:
        raise NotFoundError(f"no host named {sorted(unknown)[0]!r}; see 'corral hosts list'.")
    return sorted(hosts, key=lambda h: h.name)


def _lock_for_writing(s: Session) -> None:
    """On SQLite, take the database write lock now, before the rows to change are read.

    A write statement opens SQLite's write transaction even when it matches no row, and
    holds it until commit: a metadata write of another thread or process waits for the sync
    instead of committing between its reads and its writes. PostgreSQL locks rows instead.
    """
    if s.get_bind().dialect.name == "sqlite":
        s.execute(
            update(m.Host).where(false()).values(id=m.Host.id),
            execution_options={"synchronize_session": False},
        )


def _holders(reachable: list[_Observed], running: frozenset[str]) -> dict[str, m.Host]:
    """The host that holds each VM reported, from the answers in host-name order. Of a VM
    listed on two hosts (mid-migration, or a copy left defined on the source), the running
    copy is the VM (the later host's, in that order, if both run); failing one, the first host
    to list it keeps it. A copy unchanged since the last sync is not read again: it runs if
    it was stored running (``running``). It once counted as not running, so the leftover
    copy took the VM back on the next sync, and the running one on the sync after."""
    seen: dict[str, m.Host] = {}
    for o in reachable:
        assert o.inventory is not None
        for uuid in o.inventory.unchanged:
            if uuid not in seen or uuid in running:
                seen[uuid] = o.host
        for vm in o.inventory.vms:
            if vm.uuid not in seen or vm.state is VMState.running:
                seen[vm.uuid] = o.host
    return seen


def _without_duplicates(observed: list[_Observed]) -> list[_Observed]:
    """One libvirt host registered under two URIs answers twice: only the host registered first
    (lowest id) keeps its answer, the others become duplicates of it."""
    first: dict[str, m.Host] = {}
    for o in sorted(observed, key=lambda o: o.host.id):
        uuid = o.inventory.host.uuid if o.inventory is not None else None
        if uuid is not None:
            first.setdefault(uuid, o.host)
    out = []
    for o in observed:
        uuid = o.inventory.host.uuid if o.inventory is not None else None
        owner = first.get(uuid) if uuid is not None else None
        if owner is not None and owner is not o.host:
            o = _Observed(o.host, None, None, duplicate_of=owner.name)
        out.append(o)
    return out


def _storage_fingerprint(pools: tuple[PoolFacts, ...], networks: tuple[Any, ...]) -> str:
    """Cheap change detector: pool sizes and volume names move whenever storage does."""
    h = hashlib.blake2b(digest_size=16)
    for p in pools:
        h.update(repr((p.name, p.active, p.capacity_bytes, p.allocation_bytes)).encode())
        # The pool's volumes in one update: the digest of what one update a volume gave.
        vols = (f"{v.name}\0{v.allocation_bytes}\0{v.capacity_bytes}\0" for v in p.volumes)
        h.update("".join(vols).encode())
    h.update(repr(networks).encode())
    return h.hexdigest()


__all__ = ["HostResult", "SyncReport", "SyncService", "collector_paused", "utcnow"]
