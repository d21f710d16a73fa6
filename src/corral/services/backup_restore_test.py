"""Restore tests: the RTO proven by booting a restored VM, not assumed.

A test restores a point (by default the VM's newest) as a throwaway VM on the point's host (or
another), with every NIC moved onto a transient libvirt network that has no ``<forward>`` (so
the copy, which believes it is the original, reaches nothing), starts it and waits until it
boots (corral.hypervisor.restore.wait_booted, the policy's ``restore_test`` knobs). The time
from the start of the restore to the boot is the RTO measured, compared with the VM's tier.
The VM, its disks and the network are removed whatever happened, and the result is stored.

A test is claimed before it acts, the way the reclamation executor takes a step (claim, act,
commit): its row is written ``running`` with the process doing it (host:pid) and every file it
will write (the restored disks, the consoles), then the test acts, then the row gets its result.
A test whose process died (SIGKILL, a crash, its machine stopped) thus leaves a claim behind;
``recover`` (the start of every ``run`` and of every backup-loop round) finds each claim whose
process is gone, removes the scratch VM and network it names from its host and its files from
disk, and ends it as failed, saying why. Any claim older than the longest a test can take
(``_longest``) counts as dead too: a process on another machine cannot be asked, and a pid
of this one may have been reused.

A host that stops answering mid-test (a frozen libvirtd) fails the test within the host timeout
(libvirt keepalive on every connection, corral.services.backup_exec.HostOpener), and the point
is not proven. What the silent host could not be told to remove, and what it may still do when
it wakes (a definition it had queued), is swept by the next test on that host: a scratch VM or
network whose test has ended (its result is stored), with the VM's restored disks and consoles.

``due`` is the schedule: every backed-up VM whose newest test is older than the policy's
``restore_test.every``, the longest untested first. ``corral backup restore-test`` without a
VM tests them all; the backup loop (``scheduled``) tests up to ``backup_loop_restore_tests`` a
round, one after another, never two on one host nor on a host where another test runs.
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
from corral.domain.backup import DOMAIN_XML, Manifest
from corral.engines.backup import Policy
from corral.errors import CorralError, NotFoundError, ValidationError
from corral.hypervisor import restore as hv
from corral.services.backup_exec import HostOpener, Now, repository
from corral.services.restore import Restorer, copy_disks
from corral.services.workers import alive, this_worker
from corral.store import models as m
from corral.store.backup_repo import Repository
from corral.store.db import Database

log = logging.getLogger(__name__)
#: the name of a restore test's scratch VM and of its isolated network
SCRATCH = re.compile(r"^corral-rt-[0-9a-f]{6}$")
RUNNING, ENDED = "running", "ended"
#: beyond the qemu-img runs and the boot: verifying the chain, defining, removing
STALE_MARGIN_S = 3600


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
    state: str = ENDED  # running: claimed, its process at work (or dead, until recovered)


@dataclass(frozen=True, slots=True)
class RestoreTestRound:
    """The backup loop's restore tests of one round: the claims of dead processes cleaned up
    and ended as failed, then the tests run."""

    recovered: tuple[RestoreTestResult, ...] = ()
    tested: tuple[RestoreTestResult, ...] = ()

    def describe(self) -> str:
        booted = sum(1 for r in self.tested if r.ok)
        said = f"{len(self.tested)} restore test(s), {len(self.tested) - booted} failed"
        if self.recovered:
            said += f", {len(self.recovered)} killed test(s) cleaned up"
        return said


@dataclass(frozen=True, slots=True)
class _Claim:
    """A test written ``running`` before it acts: its row, and what it will create."""

    id: int
    name: str  # the scratch VM's, and its isolated network's
    files: tuple[Path, ...]
    rto_minutes: int | None
    started: float  # time.monotonic() at the claim: the RTO is timed from here


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
        """Test one point, one VM's newest, or every VM that is due (after cleaning up what
        killed tests left, ``recover``)."""
        self.recover()
        if point is not None:
            chosen = [self.repo.get(point)]
        elif vm is not None:
            chosen = [self._newest(vm)]
        else:
            chosen = self.due()
        return [self._one(p, host or p.host, disk_dir) for p in chosen]

    def scheduled(self, limit: int) -> RestoreTestRound:
        """The backup loop's share: clean up after killed tests, then test up to ``limit``
        due points, one after another, each on its own host, none on a host where a test
        (another process's) is running."""
        recovered = tuple(self.recover())
        busy = self._busy_hosts()
        picked: list[Manifest] = []
        for p in self.due():
            if len(picked) >= limit:
                break
            if p.host not in busy:
                busy.add(p.host)
                picked.append(p)
        return RestoreTestRound(recovered, tuple(self._one(p, p.host, None) for p in picked))

    def due(self) -> list[Manifest]:
        """The newest point of every VM whose last restore test (or the one running) is older
        than the schedule: never tested first, then the longest untested."""
        every = timedelta(minutes=self.policy.restore_test.every_minutes)
        last = self._last_tested()
        newest: dict[str, Manifest] = {}
        for p in self.repo.points():
            newest[p.vm_uuid] = p  # oldest first: the last one wins
        due = [
            p
            for uuid, p in sorted(newest.items())
            if uuid not in last or self.now() - last[uuid] >= every
        ]
        return sorted(due, key=lambda p: (p.vm_uuid in last, last.get(p.vm_uuid, p.taken_at)))

    def _busy_hosts(self) -> set[str]:
        with self.db.session() as s:
            q = select(m.RestoreTestRow.host).where(m.RestoreTestRow.state == RUNNING)
            return set(s.scalars(q).all())

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

    # -- one test: claim, act, commit ----------------------------------------------------
    def _one(self, point: Manifest, host: str, disk_dir: Path | None) -> RestoreTestResult:
        tag = secrets.token_hex(3)
        name = f"corral-rt-{tag}"
        try:
            claim = self._claim(point, host, name, disk_dir)
        except (CorralError, OSError) as exc:  # nothing was done: the failure is the result
            why = exc.message if isinstance(exc, CorralError) else f"cannot read the point: {exc}"
            claim = self._claim(point, host, name, None, files=())
            return self._end(claim, point, host, False, why, 0.0)
        restore_s, ok, detail = 0.0, False, ""
        try:
            conn = self.hosts(host)
            try:
                with hv.translated(f"the restore test of {point.id}"):
                    self.sweep(conn)
                with hv.isolated_network(conn, name, f"crt-{tag}"):
                    restore_s, ok, detail = self._boot(point, host, name, name, disk_dir, conn)
            finally:
                _close(conn)
        except CorralError as exc:
            detail = exc.message
        except BaseException as exc:  # a bug, an interrupt: the claim ends all the same
            _unlink(_with_partials(claim.files))
            why = f"the test stopped on an unexpected {type(exc).__name__}; see the log"
            self._end(claim, point, host, False, why, restore_s)
            raise
        _unlink(_with_partials(claim.files))  # a disk written before a failed define, say
        return self._end(claim, point, host, ok, detail, restore_s)

    def _claim(
        self, point: Manifest, host: str, name: str, disk_dir: Path | None,
        files: tuple[Path, ...] | None = None,
    ) -> _Claim:  # fmt: skip
        """Write the test ``running``, with this process and every file it will write,
        before anything is done (claim, act, commit)."""
        started = time.monotonic()
        if files is None:
            xml = (self.repo.folder(point.id) / DOMAIN_XML).read_text("utf-8")
            disks = copy_disks(point, xml, name, disk_dir)
            files = (*disks.values(), *hv.copy_consoles(xml, name))
        rto = self._rto(point)
        with self.db.session() as s:
            row = m.RestoreTestRow(
                vm_uuid=point.vm_uuid, vm_name=point.vm_name, point_id=point.id, host=host,
                network=name, ok=False, detail="running", restore_seconds=0.0, seconds=0.0,
                rto_minutes=rto, rto_met=None, tested_at=self.now(), state=RUNNING,
                worker=this_worker(), files=[str(f) for f in files],
            )  # fmt: skip
            s.add(row)
            s.flush()
            return _Claim(row.id, name, files, rto, started)

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
        found = {d.name() for d in conn.listAllDomains(0) if SCRATCH.match(d.name())}
        found |= {n.name() for n in conn.listAllNetworks(0) if SCRATCH.match(n.name())}
        if not found:
            return ()
        with self.db.session() as s:
            q = select(m.RestoreTestRow.network).where(
                m.RestoreTestRow.network.in_(sorted(found)), m.RestoreTestRow.state == ENDED
            )
            ended = set(s.scalars(q).all())
        done = [what for name in sorted(ended & found) for what in _clear(conn, name)]
        if done:
            log.warning("restore tests: %s (left by tests whose host stopped answering)",
                        "; ".join(done))  # fmt: skip
        return tuple(done)

    def _end(
        self, claim: _Claim, point: Manifest, host: str, ok: bool, detail: str,
        restore_s: float,
    ) -> RestoreTestResult:  # fmt: skip
        """Commit: the claimed row gets the test's result (unless a sweep ended it first)."""
        seconds = round(time.monotonic() - claim.started, 3)
        rto = claim.rto_minutes
        result = RestoreTestResult(
            vm=point.vm_name, point=point.id, host=host, network=claim.name, ok=ok,
            detail=detail, restore_seconds=round(restore_s, 3), seconds=seconds,
            rto_minutes=rto, rto_met=(ok and seconds <= rto * 60) if rto is not None else None,
            tested_at=self.now(),
        )  # fmt: skip
        self._commit(claim.id, result)
        return result

    def _commit(self, row_id: int, result: RestoreTestResult) -> bool:
        with self.db.session() as s:
            row = s.scalar(
                select(m.RestoreTestRow)
                .where(m.RestoreTestRow.id == row_id, m.RestoreTestRow.state == RUNNING)
                .with_for_update()
            )
            if row is None:
                return False  # another process ended it meanwhile
            row.state, row.ok, row.detail = ENDED, result.ok, result.detail
            row.restore_seconds, row.seconds = result.restore_seconds, result.seconds
            row.rto_met, row.tested_at = result.rto_met, result.tested_at
            return True

    # -- tests whose process died ---------------------------------------------------------
    def recover(self) -> list[RestoreTestResult]:
        """End every claimed test whose process is gone: its scratch VM and network removed
        from its host, its files from disk, its row ended as failed with the reason."""
        with self.db.session() as s:
            rows = s.scalars(
                select(m.RestoreTestRow)
                .where(m.RestoreTestRow.state == RUNNING)
                .order_by(m.RestoreTestRow.id)
            ).all()
            stale = [
                (r.id, _result(r), tuple(Path(f) for f in r.files or ()))
                for r in rows
                if self._stale(r)
            ]
        done = [self._recover(*claim) for claim in stale]
        return [r for r in done if r is not None]

    def _stale(self, row: m.RestoreTestRow) -> bool:
        """Its process is gone: the claim is older than the longest a test can take (a
        process on another machine cannot be asked; a pid of this machine may have been
        reused), or, on this machine, no process has its pid."""
        me = this_worker()
        if row.worker == me:
            return False  # this process is at it (a job runner thread)
        if self.now() - row.tested_at > self._longest(len(row.files or ())):
            return True
        return row.worker.rpartition(":")[0] == me.rpartition(":")[0] and not alive(row.worker)

    def _longest(self, files: int) -> timedelta:
        knobs = self.policy.restore_test
        most = files * hv.QEMU_IMG_TIMEOUT_S + knobs.boot_timeout_s + knobs.settle_s
        return timedelta(seconds=most + STALE_MARGIN_S)

    def _recover(
        self, row_id: int, claim: RestoreTestResult, files: tuple[Path, ...]
    ) -> RestoreTestResult | None:
        done: list[str] = []
        unreachable = ""
        try:
            conn = self.hosts(claim.host)
            try:
                with hv.translated(f"cleaning up restore test {claim.network}"):
                    done += _clear(conn, claim.network)
            finally:
                _close(conn)
        except CorralError as exc:
            unreachable = exc.message
        gone = [p for p in _with_partials(_named_after(files, claim.network)) if p.exists()]
        _unlink(gone)
        done += [f"removed {p}" for p in gone]
        detail = (
            "the restore test's process ended before the test did (killed, or its machine "
            "stopped); " + ("; ".join(done) if done else "it had left nothing")
        )
        if unreachable:
            detail += f"; host {claim.host} could not be cleaned up now ({unreachable}): the "
            detail += "next test there removes the VM and the network"
        result = RestoreTestResult(
            vm=claim.vm, point=claim.point, host=claim.host, network=claim.network, ok=False,
            detail=detail, restore_seconds=0.0, seconds=0.0, rto_minutes=claim.rto_minutes,
            rto_met=False if claim.rto_minutes is not None else None,
            tested_at=claim.tested_at,
        )  # fmt: skip
        if not self._commit(row_id, result):
            return None
        log.warning("restore test %s of %s: %s", claim.network, claim.point, detail)
        return result

    def _rto(self, point: Manifest) -> int | None:
        """The VM's RTO (None: not backed up by the policy, or its tier is not in it; the
        test still proves whether the point boots)."""
        with self.db.session() as s:
            tier = s.scalar(select(m.VM.protection_tier).where(m.VM.uuid == point.vm_uuid))
        try:
            rules = self.policy.for_vm(point.vm_name, tier).rules
        except ValidationError:
            return None
        return rules.rto_minutes if rules.backed_up else None


def _clear(conn: Any, name: str) -> list[str]:
    """Remove the scratch VM (with its restored disks and consoles) and the isolated network
    named ``name`` from ``conn``'s host, whichever is there."""
    import libvirt

    done = []
    for dom in conn.listAllDomains(0):
        if dom.name() == name:
            with contextlib.suppress(libvirt.libvirtError):  # gone meanwhile: nothing to do
                disks = [d.path for d in hv.file_disks(str(dom.XMLDesc(0)))]
                _remove(dom, [p for p in disks if p.name.startswith(f"{name}-")])
                done.append(f"removed scratch VM {name} (with its disks and consoles)")
    for net in conn.listAllNetworks(0):
        if net.name() == name:
            hv.remove_network(net)
            done.append(f"removed isolated network {name}")
    return done


def _named_after(files: tuple[Path, ...], name: str) -> tuple[Path, ...]:
    """The claimed files a test named ``name`` writes (``NAME-vda.qcow2``, ``NAME.serial.log``):
    whatever else a claim row lists is never deleted."""
    return tuple(p for p in files if p.name.startswith((f"{name}-", f"{name}.")))


def _with_partials(files: tuple[Path, ...]) -> list[Path]:
    """The files and the temporary files a restore writes them through."""
    return [q for p in files for q in (p, hv.partial(p))]


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
        r.seconds, r.rto_minutes, r.rto_met, r.tested_at, r.state,
    )  # fmt: skip
