"""Restore tests: the RTO proven by booting a restored VM, not assumed.

A test restores a point (by default the VM's newest) as a throwaway VM on the point's host (or
another), with every NIC moved onto a transient libvirt network that has no ``<forward>`` (so
the copy, which believes it is the original, reaches nothing), starts it and waits until it
boots (corral.hypervisor.restore.wait_booted, the policy's ``restore_test`` knobs). The time
from the start of the restore to the boot is the RTO measured, compared with the VM's tier.
The VM, its disks and the network are removed whatever happened, and the result is stored.

A host that stops answering mid-test (a frozen libvirtd) fails the test within the host timeout
(libvirt keepalive on every connection, corral.services.backup_exec.HostOpener), and the point
is not proven. What the silent host could not be told to remove, and what it may still do when
it wakes (a definition it had queued), is swept by the next test on that host: a scratch VM or
network whose test has ended (its result is stored), with the VM's restored disks and consoles.

``due`` is the schedule: every backed-up VM whose newest test is older than the policy's
``restore_test.every``; ``corral backup restore-test`` without a VM (from cron, or a timer)
tests those.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from corral.config import Settings
from corral.domain.backup import Manifest
from corral.engines.backup import Policy
from corral.errors import CorralError, NotFoundError
from corral.hypervisor import restore as hv
from corral.services.backup_exec import HostOpener, Now, repository
from corral.services.restore import Restorer
from corral.store import models as m
from corral.store.backup_repo import Repository
from corral.store.db import Database

log = logging.getLogger(__name__)
#: the name of a restore test's scratch VM and of its isolated network
SCRATCH = re.compile(r"^corral-rt-[0-9a-f]{6}$")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RestoreTestResult:
    vm: str
    point: str
    host: str
    network: str
    ok: bool
    detail: str
    restore_seconds: float  # writing the disks and defining the VM
    seconds: float  # restore + boot: the RTO measured
    rto_minutes: int | None
    rto_met: bool | None
    tested_at: datetime


@dataclass
class RestoreTester:
    db: Database
    repo: Repository
    hosts: HostOpener
    policy: Policy
    now: Now = _utcnow

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, policy: Policy) -> RestoreTester:
        return cls(db, repository(settings), HostOpener.from_settings(settings, db), policy)

    def run(
        self,
        vm: str | None = None,
        *,
        point: str | None = None,
        host: str | None = None,
        disk_dir: Path | None = None,
    ) -> list[RestoreTestResult]:
        """Test one point, one VM's newest, or every VM that is due."""
        if point is not None:
            chosen = [self.repo.get(point)]
        elif vm is not None:
            chosen = [self._newest(vm)]
        else:
            chosen = self.due()
        return [self._one(p, host or p.host, disk_dir) for p in chosen]

    def due(self) -> list[Manifest]:
        """The newest point of every VM whose last restore test is older than the schedule."""
        every = timedelta(minutes=self.policy.restore_test.every_minutes)
        last = self._last_tested()
        newest: dict[str, Manifest] = {}
        for p in self.repo.points():
            newest[p.vm_uuid] = p  # oldest first: the last one wins
        return [
            p
            for uuid, p in sorted(newest.items())
            if uuid not in last or self.now() - last[uuid] >= every
        ]

    def _last_tested(self) -> dict[str, datetime]:
        with self.db.session() as s:
            rows = s.execute(
                select(m.RestoreTestRow.vm_uuid, func.max(m.RestoreTestRow.tested_at)).group_by(
                    m.RestoreTestRow.vm_uuid
                )
            ).all()
        return {uuid: at for uuid, at in rows}

    def _newest(self, vm: str) -> Manifest:
        points = [p for p in self.repo.points() if vm in (p.vm_name, p.vm_uuid)]
        if not points:
            raise NotFoundError(f"VM {vm} has no restore point; run 'corral backup run' first.")
        return points[-1]

    # -- one test ----------------------------------------------------------------------
    def _one(self, point: Manifest, host: str, disk_dir: Path | None) -> RestoreTestResult:
        tag = secrets.token_hex(3)
        name, network = f"corral-rt-{tag}", f"corral-rt-{tag}"
        started = time.monotonic()
        restore_s, ok, detail = 0.0, False, ""
        try:
            conn = self.hosts(host)
            try:
                with hv.translated(f"the restore test of {point.id}"):
                    self.sweep(conn)
                with hv.isolated_network(conn, network, f"crt-{tag}"):
                    restore_s, ok, detail = self._boot(point, host, name, network, disk_dir, conn)
            finally:
                _close(conn)
        except CorralError as exc:
            detail = exc.message
        return self._record(point, host, network, ok, detail, restore_s, started)

    def _boot(
        self, point: Manifest, host: str, name: str, network: str, disk_dir: Path | None,
        conn: Any,
    ) -> tuple[float, bool, str]:  # fmt: skip
        knobs = self.policy.restore_test
        began = time.monotonic()
        restorer = Restorer(self.db, self.repo, self.hosts)
        done = restorer.restore(
            point.id, host=host, as_name=name, disk_dir=disk_dir, start=False, network=network
        )
        restore_s = time.monotonic() - began
        disks = [Path(d) for d in done.disks]
        try:
            with hv.translated(f"the restore test of {point.id}"):
                dom = conn.lookupByName(name)  # the host may stop answering from here on
                try:
                    dom.create()
                    ok, detail = hv.wait_booted(
                        dom, marker=knobs.boot_marker, timeout_s=knobs.boot_timeout_s,
                        settle_s=knobs.settle_s,
                    )  # fmt: skip
                finally:
                    _remove(dom, disks)
        finally:
            _unlink(disks)  # at once, whatever the host does: the definition waits for a sweep
        return restore_s, ok, detail

    def sweep(self, conn: Any) -> tuple[str, ...]:
        """Remove what ended tests left on ``conn``'s host: each scratch VM (with its restored
        disks and consoles) and isolated network named after a test whose result is stored.
        A test still running has no result yet, so it is never touched."""
        found = {d.name(): d for d in conn.listAllDomains(0) if SCRATCH.match(d.name())}
        nets = {n.name(): n for n in conn.listAllNetworks(0) if SCRATCH.match(n.name())}
        if not found and not nets:
            return ()
        with self.db.session() as s:
            q = select(m.RestoreTestRow.network).where(
                m.RestoreTestRow.network.in_(sorted({*found, *nets}))
            )
            ended = set(s.scalars(q).all())
        done = []
        for name in sorted(ended & set(found)):
            disks = [d.path for d in hv.file_disks(str(found[name].XMLDesc(0)))]
            _remove(found[name], [p for p in disks if p.name.startswith(f"{name}-")])
            done.append(f"removed scratch VM {name}")
        for name in sorted(ended & set(nets)):
            hv.remove_network(nets[name])
            done.append(f"removed isolated network {name}")
        if done:
            log.warning("restore tests: %s (left by tests whose host stopped answering)",
                        "; ".join(done))  # fmt: skip
        return tuple(done)

    def _record(
        self, point: Manifest, host: str, network: str, ok: bool, detail: str,
        restore_s: float, started: float,
    ) -> RestoreTestResult:  # fmt: skip
        seconds = round(time.monotonic() - started, 3)
        rto = self._rto(point)
        result = RestoreTestResult(
            vm=point.vm_name, point=point.id, host=host, network=network, ok=ok, detail=detail,
            restore_seconds=round(restore_s, 3), seconds=seconds, rto_minutes=rto,
            rto_met=(ok and seconds <= rto * 60) if rto is not None else None,
            tested_at=self.now(),
        )  # fmt: skip
        with self.db.session() as s:
            s.add(
                m.RestoreTestRow(
                    vm_uuid=point.vm_uuid, vm_name=result.vm, point_id=result.point,
                    host=host, network=network, ok=ok, detail=detail,
                    restore_seconds=result.restore_seconds, seconds=seconds, rto_minutes=rto,
                    rto_met=result.rto_met, tested_at=result.tested_at,
                )
            )  # fmt: skip
        return result

    def _rto(self, point: Manifest) -> int | None:
        with self.db.session() as s:
            tier = s.scalar(select(m.VM.protection_tier).where(m.VM.uuid == point.vm_uuid))
        rules = self.policy.for_vm(point.vm_name, tier).rules
        return rules.rto_minutes if rules.backed_up else None


def _remove(dom: Any, disks: list[Path]) -> None:
    """A scratch VM gone, its disks and consoles too; a host that stops answering meanwhile
    leaves the definition for the next test's sweep, never a half-removed disk set."""
    import libvirt

    consoles: list[Path] = []
    with contextlib.suppress(libvirt.libvirtError):
        consoles = hv.file_consoles(str(dom.XMLDesc(0)))
    try:
        hv.remove_vm(dom)
    finally:
        _unlink([*disks, *consoles])


def _close(conn: Any) -> None:
    """Closing a connection whose host stopped answering fails too; there is nothing to keep."""
    import libvirt

    with contextlib.suppress(libvirt.libvirtError):
        conn.close()


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def history(db: Database, vm: str | None = None, limit: int = 100) -> list[RestoreTestResult]:
    """The stored restore tests, newest first (of one VM: name or UUID)."""
    with db.session() as s:
        q = select(m.RestoreTestRow).order_by(m.RestoreTestRow.tested_at.desc())
        if vm is not None:
            q = q.where((m.RestoreTestRow.vm_name == vm) | (m.RestoreTestRow.vm_uuid == vm))
        rows = s.scalars(q.limit(limit)).all()
        return [_result(r) for r in rows]


def _result(r: m.RestoreTestRow) -> RestoreTestResult:
    return RestoreTestResult(
        r.vm_name, r.point_id, r.host, r.network, r.ok, r.detail, r.restore_seconds,
        r.seconds, r.rto_minutes, r.rto_met, r.tested_at,
    )  # fmt: skip
