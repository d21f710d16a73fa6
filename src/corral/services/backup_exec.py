"""The backup executor: takes the due backups into the repository and keeps the catalog.

``run`` backs up every VM whose newest restore point is older than its RPO (or one VM on
request; a shut-off VM's disks are read offline, corral.hypervisor.backup_offline): a full
backup first, then incrementals through libvirt checkpoints, a new full
after ``backup_full_every`` incrementals. When the chain cannot continue (the checkpoint is
gone from the VM's host after a move, or its bitmap was lost in a crash) the backup is a full
one and the reason is recorded in the manifest and in the run.

A job killed half-way (this process, say) is redone by the next run: the VM's lock died with
the process, its ``.partial-`` folder is thrown away, a backup job libvirt still runs for it
is aborted, and checkpoints no sealed restore point names are dropped, so the next
incremental starts from the last point that really exists. When the host's libvirtd dies
while a job runs, QEMU keeps copying: the run waits (``reconnect_s``) for the daemon to answer
again and follows the job to its end on a new connection; if it does not come back in time,
the run fails with no point and the next run redoes the backup.

``verify`` re-hashes restore points; ``gc`` applies each VM's retention and never deletes a
point a retained incremental depends on.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from corral.config import Settings
from corral.domain.backup import DOMAIN_XML, Manifest, Verified
from corral.domain.model import EventKind
from corral.engines.backup import Consistency as ConsistencyRule
from corral.engines.backup import Policy
from corral.engines.backup.retention import Dated, retained
from corral.errors import CorralError, HostUnreachableError, HypervisorError, NotFoundError
from corral.hypervisor import deadline
from corral.hypervisor import restore as hv
from corral.hypervisor.backup import (
    DaemonLost,
    JobGone,
    RestorePoint,
    back_up,
    resume,
    thaw_quietly,
)
from corral.hypervisor.backup_offline import OfflineDisk, offline_backup
from corral.hypervisor.libvirt.connection import Credentials
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services.backup_holds import holds
from corral.store import models as m
from corral.store.backup_repo import Repository
from corral.store.db import Database

Now = Callable[[], datetime]
RECONNECT_POLL_S = 0.5
#: a VM in one of these states is backed up when due: online while it runs, its disks read
#: offline while it is shut off
BACKED_UP_STATES = ("running", "paused", "shutoff")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def repository(settings: Settings) -> Repository:
    return Repository(settings.backup_repository or settings.home / "backups")


@dataclass(frozen=True)
class HostOpener:
    """Opens a registered host by name: its URI and credentials as the inventory holds them."""

    db: Database
    access: HostAccess = field(default_factory=HostAccess)
    secrets: SecretBox | None = None

    @classmethod
    def of(cls, inventory: Inventory) -> HostOpener:
        return cls(inventory.db, inventory.access, inventory.secrets)

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> HostOpener:
        return cls(db, HostAccess.from_settings(settings), SecretBox.from_settings(settings))

    def __call__(self, host: str) -> Any:
        with self.db.session() as s:
            row = s.scalar(select(m.Host).where(m.Host.name == host))
            if row is None:
                raise NotFoundError(f"no host named {host!r}; see 'corral hosts list'.")
            uri, user, secret = row.uri, row.username, row.secret
        creds = None
        if user or secret:
            password = self.secrets.decrypt(secret) if secret and self.secrets else None
            creds = Credentials(user, password)
        return self._bounded_open(host, uri, creds)

    def _bounded_open(self, host: str, uri: str, creds: Credentials | None) -> Any:
        """A frozen daemon accepts the connection and never answers: the open runs under the
        host timeout, and keepalive then bounds every call made on the connection."""
        from corral.hypervisor.events import ensure_event_loop  # libvirt: on use

        ensure_event_loop()  # keepalive needs libvirt's event loop before the connection opens
        timeout = self.access.timeout_s
        out = deadline.call(
            f"backup-open:{host}", lambda: hv.open_conn(uri, self.access, creds), timeout
        )
        if out.status is deadline.Status.BUSY:
            raise HostUnreachableError(
                f"host {host} has not yet answered an earlier request; nothing was done on it."
            )
        if out.status is deadline.Status.LATE:
            raise HostUnreachableError(
                f"host {host} did not answer within {timeout:g} s; nothing was done on it."
            )
        if out.error is not None:
            raise out.error
        hv.keep_alive(out.value, timeout)
        return out.value


@dataclass(frozen=True, slots=True)
class Target:
    """A VM to back up, as the inventory knows it."""

    uuid: str
    name: str
    host: str
    tier: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One VM's run: ``status`` done, skipped or failed; the point taken, with its kind."""

    vm: str
    status: str
    point: str | None = None
    kind: str | None = None
    bytes: int = 0
    seconds: float = 0.0
    fallback: str | None = None
    detail: str = ""
    redone: tuple[str, ...] = ()
    consistency: str | None = None  # crash or application
    consistency_note: str | None = None  # what was cleaned up from a job that never finished


@dataclass(frozen=True, slots=True)
class RunReport:
    outcomes: tuple[Outcome, ...]

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if o.status == "failed")


@dataclass
class Executor:
    db: Database
    repo: Repository
    policy: Policy
    hosts: HostOpener
    full_every: int = 7
    now: Now = _utcnow
    reconnect_s: float = 120.0  # how long a run waits for a host's libvirtd that died mid-job
    _conns: _Conns = field(default_factory=lambda: _Conns([]), init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, policy: Policy) -> Executor:
        hosts = HostOpener.from_settings(settings, db)
        return cls(db, repository(settings), policy, hosts, settings.backup_full_every)

    # -- the run -----------------------------------------------------------------------
    def run(self, vm: str | None = None) -> RunReport:
        """Back up ``vm`` now, or every running VM whose newest point is older than its RPO."""
        targets = [self._target(vm)] if vm else self._due()
        return RunReport(tuple(self._one(t) for t in targets))

    def _due(self) -> list[Target]:
        due = []
        for target in self._targets():
            rules = self.policy.for_vm(target.name, target.tier).rules
            if not rules.backed_up:
                continue
            newest = self.repo.points(target.uuid)
            limit = timedelta(minutes=rules.rpo_minutes)
            if not newest or self.now() - newest[-1].taken_at >= limit:
                due.append(target)
        return due

    def _targets(self, ref: str | None = None) -> list[Target]:
        with self.db.session() as s:
            q = (
                select(m.VM, m.Host)
                .join(m.Host, m.VM.host_id == m.Host.id)
                .where(m.VM.deleted_at.is_(None))
            )
            if ref is None:
                q = q.where(m.VM.state.in_(BACKED_UP_STATES))
            else:
                q = q.where((m.VM.name == ref) | (m.VM.uuid == ref.lower()))
            return [
                Target(vm.uuid, vm.name, host.name, vm.protection_tier)
                for vm, host in s.execute(q).all()
            ]

    def _target(self, ref: str) -> Target:
        found = self._targets(ref)
        if len(found) != 1:
            what = "no VM" if not found else f"{len(found)} VMs"
            raise NotFoundError(f"{what} named {ref!r} on a known host; run 'corral sync' first.")
        return found[0]

    def _one(self, target: Target) -> Outcome:
        try:
            with self.repo.vm_lock(target.uuid), hv.translated(f"the backup of {target.name}"):
                return self._locked(target)
        except CorralError as exc:
            return Outcome(target.name, "failed", detail=exc.message)

    def _locked(self, target: Target) -> Outcome:
        conn = self.hosts(target.host)
        with contextlib.closing(_Conns([conn])) as self._conns:
            dom = hv.find_domain(conn, target.uuid)
            aborted: tuple[str, ...] = ()
            if dom is not None and dom.isActive() and hv.backup_running(dom):
                hv.abort_backup(dom)  # first: the old job may still write into its folder
                aborted = ("aborted the backup job a killed run left in libvirt",)
            redone = aborted + self._clean_up(target)
            if dom is None:
                why = f"not on host {target.host} any more; run 'corral sync'"
                return Outcome(target.name, "skipped", detail=why, redone=redone)
            return self._take(target, dom, redone)

    def _clean_up(self, target: Target) -> tuple[str, ...]:
        """What a killed job left: unfinished folders, and its run still marked running."""
        done = []
        for folder in self.repo.leftovers(target.uuid):
            self.repo.discard(folder)
            done.append(f"removed {folder.name}")
        with self.db.session() as s:
            stale = s.execute(
                update(m.BackupRunRow)
                .where(m.BackupRunRow.vm_uuid == target.uuid, m.BackupRunRow.status == "running")
                .values(status="interrupted", finished_at=self.now())
            )
            if getattr(stale, "rowcount", 0):
                done.append("marked the killed run interrupted")
        return tuple(done)

    def _take(self, target: Target, dom: Any, redone: tuple[str, ...]) -> Outcome:
        points = self.repo.points(target.uuid)
        parent, fallback = self._parent(target, dom, points)
        hv.drop_checkpoints(dom, frozenset({parent.checkpoint}) if parent else frozenset())
        at = self.now()  # the point's data is the disks as of the job's start
        point_id = _point_id(at)
        run_id = self._start_run(target)
        folder = self.repo.begin(target.uuid, point_id)
        started = time.monotonic()
        try:
            with hv.translated(f"the backup of {target.name}"):
                manifest, dom = self._write(target, dom, folder, (point_id, at), parent)
        except (CorralError, OSError) as exc:
            self.repo.discard(folder)
            detail = exc.message if isinstance(exc, CorralError) else str(exc)
            self._finish_run(run_id, "failed", None, None, detail)
            return Outcome(target.name, "failed", detail=detail, redone=redone)
        if fallback and manifest.fallback is None:
            manifest = _with(manifest, fallback=fallback)
        manifest = _with(manifest, seconds=round(time.monotonic() - started, 3))
        self.repo.commit(folder, manifest)
        self._catalog(manifest)
        hv.drop_checkpoints(dom, frozenset({manifest.checkpoint}))
        self._finish_run(run_id, "done", manifest.id, manifest.kind, manifest.fallback or "")
        return Outcome(
            target.name, "done", manifest.id, manifest.kind, manifest.size,
            manifest.seconds, manifest.fallback, redone=redone,
            consistency=manifest.consistency, consistency_note=manifest.consistency_note,
        )  # fmt: skip

    def _parent(
        self, target: Target, dom: Any, points: Sequence[Manifest]
    ) -> tuple[Manifest | None, str | None]:
        """The point the next incremental builds on; None (and why, if not the first or a
        planned new full) when the next backup must be full."""
        if not points:
            return None, None
        last = points[-1]
        chain_length = 0
        for p in reversed(points):
            if p.kind == "full":
                break
            chain_length += 1
        if chain_length + 1 >= self.full_every:
            return None, None
        if last.checkpoint not in hv.checkpoints(dom):
            return None, (
                f"checkpoint {last.checkpoint} of point {last.id} is gone from host {target.host} "
                "(the VM was moved, redefined or restored): a new full backup starts the chain"
            )
        return last, None

    def _write(
        self,
        target: Target,
        dom: Any,
        folder: Path,
        point: tuple[str, datetime],
        parent: Manifest | None,
    ) -> tuple[Manifest, Any]:
        point_id, at = point
        xml = hv.inactive_xml(dom)
        (folder / DOMAIN_XML).write_text(xml, encoding="utf-8")
        disks = [d for d in hv.file_disks(xml) if d.fmt == "qcow2"]
        if not disks:
            raise HypervisorError(f"{target.name} has no qcow2 file disk to back up.")
        targets = [(d.target, folder / f"{d.target}.qcow2") for d in disks]
        checkpoint = f"corral-{point_id}"
        since = parent.checkpoint if parent else None
        if not dom.isActive():  # libvirt's backup API needs a running domain
            offline = [
                OfflineDisk(d.target, d.path, p) for d, (_, p) in zip(disks, targets, strict=True)
            ]
            taken = offline_backup(dom, offline, checkpoint, since=since)
        else:
            quiesce = self._quiesce(target)
            try:
                taken = back_up(dom, targets, checkpoint, since=since,
                                mib_s=self.policy.planner.job_mib_s, quiesce=quiesce)  # fmt: skip
            except DaemonLost:
                dom = self._reconnect(target)
                if quiesce:
                    thaw_quietly(dom)
                try:
                    backup = resume(dom, targets, checkpoint)
                    taken = RestorePoint(backup, incremental=since is not None)
                except JobGone:
                    taken = self._again(dom, targets, checkpoint, since, quiesce)
        if taken.incremental and parent is not None:
            for disk, path in targets:
                hv.rebase(path, f"../{parent.id}/{disk}.qcow2")
        files = [self.repo.describe(folder, p.name, disk) for disk, p in targets]
        files.append(self.repo.describe(folder, DOMAIN_XML))
        return Manifest(
            id=point_id,
            vm_uuid=target.uuid,
            vm_name=target.name,
            host=target.host,
            kind="incremental" if taken.incremental else "full",
            parent=parent.id if taken.incremental and parent else None,
            checkpoint=checkpoint,
            taken_at=at,
            files=tuple(files),
            fallback=taken.fallback,
            consistency=taken.backup.consistency.level,
            consistency_note=taken.backup.consistency.note,
        ), dom

    def _again(
        self, dom: Any, targets: list[tuple[str, Path]], checkpoint: str, since: str | None,
        quiesce: bool,
    ) -> RestorePoint:  # fmt: skip
        """The lost job ended unseen (done or not, nobody can tell): its files and checkpoint
        go and the backup is taken once more, on the new connection."""
        for _, path in targets:
            path.unlink(missing_ok=True)
        hv.drop_checkpoints(dom, frozenset({since}) if since else frozenset())
        mib_s = self.policy.planner.job_mib_s
        return back_up(dom, targets, checkpoint, since=since, mib_s=mib_s, quiesce=quiesce)

    def _quiesce(self, target: Target) -> bool:
        rules = self.policy.for_vm(target.name, target.tier).rules
        return rules.consistency is ConsistencyRule.application

    def _reconnect(self, target: Target) -> Any:
        """libvirtd died under a running job: wait (up to ``reconnect_s``) for it to answer
        again and give back the VM's domain on the new connection."""
        deadline = time.monotonic() + self.reconnect_s
        while True:
            try:
                conn = self.hosts(target.host)
            except HypervisorError:
                if time.monotonic() > deadline:
                    raise HypervisorError(
                        f"libvirtd of host {target.host} died during the backup of {target.name} "
                        f"and did not come back within {self.reconnect_s:g} s; the next run "
                        "redoes the backup."
                    ) from None
                time.sleep(RECONNECT_POLL_S)
                continue
            self._conns.add(conn)
            dom = hv.find_domain(conn, target.uuid)
            if dom is None or not dom.isActive():
                raise HypervisorError(f"{target.name} stopped while libvirtd was down.")
            return dom

    # -- the catalog -------------------------------------------------------------------
    def _start_run(self, target: Target) -> int:
        with self.db.session() as s:
            row = m.BackupRunRow(
                vm_uuid=target.uuid, vm_name=target.name, status="running", detail="",
                pid=os.getpid(), started_at=self.now(),
            )  # fmt: skip
            s.add(row)
            s.flush()
            return int(row.id)

    def _finish_run(
        self, run_id: int, status: str, point: str | None, kind: str | None, detail: str
    ) -> None:
        with self.db.session() as s:
            s.execute(
                update(m.BackupRunRow)
                .where(m.BackupRunRow.id == run_id)
                .values(status=status, point_id=point, kind=kind, detail=detail,
                        finished_at=self.now())
            )  # fmt: skip

    def _catalog(self, manifest: Manifest) -> None:
        with self.db.session() as s:
            s.merge(catalog_row(manifest))


class _Conns:
    """The connections one VM's backup opened (a second one after libvirtd came back)."""

    def __init__(self, conns: list[Any]) -> None:
        self.conns = conns

    def add(self, conn: Any) -> None:
        self.conns.append(conn)

    def close(self) -> None:
        import libvirt

        for conn in self.conns:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()  # a connection to a daemon that died fails to close


def catalog_row(manifest: Manifest) -> m.BackupPointRow:
    return m.BackupPointRow(
        id=manifest.id, vm_uuid=manifest.vm_uuid, vm_name=manifest.vm_name,
        host=manifest.host, kind=manifest.kind, parent_id=manifest.parent,
        checkpoint=manifest.checkpoint, taken_at=manifest.taken_at, bytes=manifest.size,
        fallback=manifest.fallback, consistency=manifest.consistency,
        consistency_note=manifest.consistency_note,
    )  # fmt: skip


def _point_id(at: datetime) -> str:
    return f"{at.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def _with(manifest: Manifest, **changes: Any) -> Manifest:
    from dataclasses import replace

    return replace(manifest, **changes)


# -- verification and garbage collection ---------------------------------------------------
def verify(
    db: Database, repo: Repository, point: str | None = None, now: Now = _utcnow
) -> list[Verified]:
    """Re-hash one point or all of them; the catalog records when and whether they held."""
    ids = [point] if point else [p.id for p in repo.points()]
    results = [repo.verify(i) for i in ids]
    with db.session() as s:
        for r in results:
            s.execute(
                update(m.BackupPointRow)
                .where(m.BackupPointRow.id == r.point)
                .values(verified_at=now(), verify_ok=r.ok)
            )
    return results


@dataclass(frozen=True, slots=True)
class GcResult:
    kept: dict[str, str]  # point -> why
    removed: tuple[str, ...]
    dry_run: bool
    held: tuple[str, ...] = ()  # points no rule keeps, kept by a legal hold


def gc(
    db: Database, repo: Repository, policy: Policy, *, dry_run: bool = False,
    now: Now = _utcnow,
) -> GcResult:  # fmt: skip
    """Delete the points no retention rule keeps, newest child first; never a point on
    hold, never a parent of a kept point. A VM Corral no longer knows keeps its default
    tier's retention. Each deletion is audited (the catalog row) and an event."""
    tiers = _tiers(db)
    on_hold = {p: h.reason for p, h in holds(db).items()}
    by_vm: dict[str, list[Manifest]] = {}
    for p in repo.points():
        by_vm.setdefault(p.vm_uuid, []).append(p)
    kept: dict[str, str] = {}
    removed: list[Manifest] = []
    for vm_uuid, points in by_vm.items():
        name, tier = tiers.get(vm_uuid, (points[-1].vm_name, None))
        rules = policy.for_vm(name, tier).rules.retention
        dated = [Dated(p.id, p.taken_at, p.parent) for p in points]
        decision = retained(dated, rules, on_hold)
        kept.update(decision.keep)
        by_id = {p.id: p for p in points}
        removed.extend(by_id[i] for i in decision.remove)
    if not dry_run:
        for point in removed:  # newest first: a child goes before its parent
            _expire(db, repo, point, now())
    held = tuple(p for p, why in kept.items() if why.startswith("on hold"))
    return GcResult(kept, tuple(p.id for p in removed), dry_run, held)


def _expire(db: Database, repo: Repository, point: Manifest, at: datetime) -> None:
    repo.remove(point.id)
    with db.session() as s:
        row = s.get(m.BackupPointRow, point.id)
        if row is not None:
            s.delete(row)
        s.add(
            m.Event(
                at=at, kind=EventKind.restore_point_expired.value, vm_uuid=point.vm_uuid,
                host_name=point.host,
                details={"point": point.id, "vm": point.vm_name, "kind": point.kind,
                         "taken_at": point.taken_at.isoformat(), "bytes": point.size},
            )
        )  # fmt: skip


def _tiers(db: Database) -> dict[str, tuple[str, str | None]]:
    with db.session() as s:
        rows = s.execute(select(m.VM.uuid, m.VM.name, m.VM.protection_tier)).all()
    return {uuid: (name, tier) for uuid, name, tier in rows}
