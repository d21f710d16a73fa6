"""Forensic snapshots of suspect VMs, their chain of custody, and rollbacks of compromised VMs.

``snapshot`` optionally cuts the VM off first (its NICs onto an isolated network: containment
cannot wait for the copy), then captures memory and disks (corral.hypervisor.forensic), hashes
every file, seals the folder read-only and writes the custody record: a database row the
audit log records with the actor, the time, the reason and each file's SHA-256. ``verify``
re-hashes evidence against that row. Retention: evidence is kept ``retention_days`` (the
setting ``forensic_retention_days``) and ``expire`` deletes what is older, each deletion a
custody record of its own (kind ``expired``, with the hashes checked just before); a legal
``hold`` forbids that until it is ``release``d, and the expiry run names what it refused.
``rollback`` keeps the compromised state as evidence
first (unless told not to), then restores the VM in place from a known-good restore point
through the restore service.

A snapshot of a VM takes the backup repository's per-VM lock, so it never meets a backup or
restore of the same VM (libvirt would make one of them wait 30 s and fail).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from corral.config import Settings
from corral.domain.forensic import Evidence, EvidenceCheck, Rollback
from corral.domain.model import EventKind
from corral.errors import ConflictError, NotFoundError, ValidationError
from corral.hypervisor import forensic as hv
from corral.hypervisor import restore as hv_restore
from corral.security import signed_webhook
from corral.security.signed_webhook import OPENAPI_MARK, SIGNATURE_HEADER, WebhookRefused
from corral.services.backup_exec import HostOpener, repository
from corral.services.backup_holds import MAX_REASON, check_reason
from corral.services.restore import Restorer
from corral.store import models as m
from corral.store.backup_repo import Repository
from corral.store.db import Database
from corral.store.evidence import EvidenceStore

Now = Callable[[], datetime]
T = TypeVar("T")
DEFAULT_RETENTION_DAYS = 90
HOLD, RELEASE, EXPIRED = "hold", "release", "expired"
__all__ = ["OPENAPI_MARK", "SIGNATURE_HEADER", "ForensicService", "WebhookRefused"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def evidence_store(settings: Settings) -> EvidenceStore:
    return EvidenceStore(settings.forensic_dir or settings.home / "forensic")


@dataclass(frozen=True, slots=True)
class Expiry:
    """One run of the retention job: evidence deleted, and evidence past its time but on hold."""

    retention_days: int
    deleted: tuple[str, ...]
    held: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Suspect:
    uuid: str
    name: str
    host: str


@dataclass
class ForensicService:
    db: Database
    store: EvidenceStore
    repo: Repository
    hosts: HostOpener
    now: Now = _utcnow
    retention_days: int = DEFAULT_RETENTION_DAYS

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> ForensicService:
        hosts = HostOpener.from_settings(settings, db)
        days = settings.forensic_retention_days
        return cls(db, evidence_store(settings), repository(settings), hosts, retention_days=days)

    # -- snapshot ------------------------------------------------------------------------
    def snapshot(self, vm: str, *, by: str, reason: str, isolate: str | None = None) -> Evidence:
        """Memory + disks of the running ``vm`` (name or UUID) as sealed, hashed evidence."""
        check_reason(reason)
        suspect = self.suspect(vm)
        with self.repo.vm_lock(suspect.uuid):
            return self._snapshot(suspect, by, reason, isolate)

    def _snapshot(self, suspect: Suspect, by: str, reason: str, isolate: str | None) -> Evidence:
        at = self.now()
        evidence_id = f"{at.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
        started = time.monotonic()
        conn = self.hosts(suspect.host)
        try:
            with hv_restore.translated(f"the forensic snapshot of {suspect.name}"):
                dom = hv_restore.find_domain(conn, suspect.uuid)
                if dom is None:
                    raise NotFoundError(
                        f"VM {suspect.name} is not on host {suspect.host}; run 'corral sync'."
                    )
                moved = hv.isolate(dom, isolate) if isolate else ()
                folder = self.store.begin(evidence_id)
                try:
                    captured = hv.capture(dom, folder, f"corral-forensic-{evidence_id}")
                    files = tuple(self.store.describe(folder, n, d) for n, d in captured.files)
                except BaseException:  # also a libvirt error on its way to translation
                    self.store.discard(folder)
                    raise
        finally:
            conn.close()
        evidence = Evidence(
            id=evidence_id, vm_uuid=suspect.uuid, vm_name=suspect.name, host=suspect.host,
            taken_by=by, taken_at=at, reason=reason, files=files, isolated_to=isolate,
            moved=moved, seconds=round(time.monotonic() - started, 3),
        )  # fmt: skip
        self.store.seal(folder, evidence)
        self._record(evidence)
        return evidence

    def _record(self, evidence: Evidence) -> None:
        doc = asdict(evidence)
        doc["taken_at"] = evidence.taken_at.isoformat()
        with self.db.session() as s:
            s.add(
                m.ForensicRecordRow(
                    id=evidence.id, kind="snapshot", vm_uuid=evidence.vm_uuid,
                    vm_name=evidence.vm_name, host=evidence.host, actor=evidence.taken_by[:64],
                    reason=evidence.reason, at=evidence.taken_at, files=doc["files"],
                    isolated_to=evidence.isolated_to, point_id=None, evidence_id=None, doc=doc,
                )
            )  # fmt: skip

    # -- reading and checking ------------------------------------------------------------
    def evidence(self, vm: str | None = None) -> list[Evidence]:
        """Every evidence set still kept, oldest first (of one VM: name or UUID)."""
        q = select(m.ForensicRecordRow).where(m.ForensicRecordRow.kind == "snapshot")
        if vm is not None:
            q = q.where((m.ForensicRecordRow.vm_name == vm) | (m.ForensicRecordRow.vm_uuid == vm))
        gone = self._related(EXPIRED)
        with self.db.session() as s:
            rows = s.scalars(q.order_by(m.ForensicRecordRow.at, m.ForensicRecordRow.id)).all()
            return [Evidence.from_doc(r.doc) for r in rows if r.id not in gone]

    def show(self, evidence_id: str) -> Evidence:
        with self.db.session() as s:
            row = s.get(m.ForensicRecordRow, evidence_id)
            if row is None or row.kind != "snapshot":
                raise NotFoundError(
                    f"no forensic evidence {evidence_id[:80]!r}; see 'corral forensic list'."
                )
            found = Evidence.from_doc(row.doc)
        if evidence_id in self._related(EXPIRED):
            raise NotFoundError(f"evidence {evidence_id} was deleted when its retention ended.")
        return found

    # -- retention -----------------------------------------------------------------------
    def hold(self, evidence_id: str, *, by: str, reason: str) -> None:
        """A legal hold: the evidence is not deleted, whatever its age, until released."""
        check_reason(reason)
        evidence = self.show(evidence_id)
        if self.on_hold(evidence_id):
            raise ConflictError(f"evidence {evidence_id} is on hold already.")
        self._custody(HOLD, evidence, by, reason)

    def release(self, evidence_id: str, *, by: str, reason: str) -> None:
        """End a legal hold; the evidence is deleted by the next expiry run past its time."""
        check_reason(reason)
        evidence = self.show(evidence_id)
        if not self.on_hold(evidence_id):
            raise ConflictError(f"evidence {evidence_id} is not on hold.")
        self._custody(RELEASE, evidence, by, reason)

    def on_hold(self, evidence_id: str) -> bool:
        """Holds and releases alternate (each refuses out of turn), so more holds than
        releases means on hold, whatever the clocks said when they were recorded."""
        q = (
            select(m.ForensicRecordRow.kind)
            .where(m.ForensicRecordRow.evidence_id == evidence_id)
            .where(m.ForensicRecordRow.kind.in_((HOLD, RELEASE)))
        )
        with self.db.session() as s:
            kinds = list(s.scalars(q).all())
        return kinds.count(HOLD) > kinds.count(RELEASE)

    def expire(self, *, by: str) -> Expiry:
        """Delete the evidence older than the retention (never one on hold), each deletion
        recorded with the hashes the files had just before it."""
        cutoff = self.now() - timedelta(days=self.retention_days)
        held, deleted = [], []
        for evidence in self.evidence():
            if evidence.taken_at > cutoff:
                continue
            if self.on_hold(evidence.id):
                held.append(evidence.id)
                continue
            self._delete(evidence, by)
            deleted.append(evidence.id)
        return Expiry(self.retention_days, tuple(deleted), tuple(held))

    def _delete(self, evidence: Evidence, by: str) -> None:
        check = self.store.check(evidence)
        why = f"retention of {self.retention_days} days ended"
        if not check.ok:
            why += "; before deletion: " + "; ".join(check.problems)
        with self.db.session() as s:  # the record commits only once the folder is gone
            record = self._custody_row(EXPIRED, evidence, by, why[:MAX_REASON])
            s.add(record)
            s.add(
                m.Event(
                    at=record.at, kind=EventKind.evidence_expired.value,
                    vm_uuid=evidence.vm_uuid, host_name=evidence.host,
                    details={"evidence": evidence.id, "vm": evidence.vm_name, "by": by,
                             "record": record.id, "bytes": evidence.size},
                )
            )  # fmt: skip
            s.flush()
            self.store.remove(evidence.id)

    def _custody(self, kind: str, evidence: Evidence, by: str, reason: str) -> None:
        with self.db.session() as s:
            s.add(self._custody_row(kind, evidence, by, reason))

    def _custody_row(
        self, kind: str, evidence: Evidence, by: str, reason: str
    ) -> m.ForensicRecordRow:
        at = self.now()
        doc = {"kind": kind, "evidence": evidence.id, "by": by, "reason": reason}
        return m.ForensicRecordRow(
            id=f"{at.strftime('%Y%m%dT%H%M%S')}-{kind[:3]}-{secrets.token_hex(3)}",
            kind=kind, vm_uuid=evidence.vm_uuid, vm_name=evidence.vm_name, host=evidence.host,
            actor=by[:64], reason=reason, at=at, files=[asdict(f) for f in evidence.files],
            isolated_to=None, point_id=None, evidence_id=evidence.id, doc=doc,
        )  # fmt: skip

    def _related(self, kind: str) -> set[str]:
        """Evidence ids that have a custody record of ``kind``."""
        q = select(m.ForensicRecordRow.evidence_id).where(m.ForensicRecordRow.kind == kind)
        with self.db.session() as s:
            return {str(i) for i in s.scalars(q).all() if i}

    def verify(self, evidence_id: str | None = None) -> list[EvidenceCheck]:
        """Re-hash one evidence set (or all) against its custody record."""
        found = [self.show(evidence_id)] if evidence_id else self.evidence()
        return [self.store.check(e) for e in found]

    # -- rollback ------------------------------------------------------------------------
    def rollback(
        self, vm: str, point: str, *, by: str, reason: str, evidence: bool = True
    ) -> Rollback:
        """Restore ``vm`` in place from restore point ``point``; its state is evidence first."""
        check_reason(reason)
        suspect = self.suspect(vm)
        manifest = self.repo.get(point)
        if manifest.vm_uuid != suspect.uuid:
            raise ValidationError(
                f"restore point {point} belongs to {manifest.vm_name}, not {suspect.name}."
            )
        started = time.monotonic()
        kept = None
        if evidence:
            why = f"before rollback to {point}: {reason}"
            kept = self.snapshot(suspect.uuid, by=by, reason=why[:MAX_REASON]).id
        restored = Restorer(self.db, self.repo, self.hosts).restore(point)
        done = Rollback(
            vm_name=suspect.name, vm_uuid=suspect.uuid, point=point, evidence=kept,
            host=restored.host, started=restored.started,
            seconds=round(time.monotonic() - started, 3),
        )  # fmt: skip
        self._record_rollback(done, by, reason)
        return done

    def _record_rollback(self, done: Rollback, by: str, reason: str) -> None:
        at = self.now()
        with self.db.session() as s:
            s.add(
                m.ForensicRecordRow(
                    id=f"{at.strftime('%Y%m%dT%H%M%S')}-rb-{secrets.token_hex(3)}",
                    kind="rollback", vm_uuid=done.vm_uuid, vm_name=done.vm_name,
                    host=done.host, actor=by[:64], reason=reason, at=at, files=[],
                    isolated_to=None, point_id=done.point, evidence_id=done.evidence,
                    doc=asdict(done),
                )
            )  # fmt: skip

    # -- webhook deliveries ----------------------------------------------------------------
    def delivery(
        self,
        secret: bytes | None,
        body: bytes,
        signature: str | None,
        max_age_s: float,
        parse: Callable[[dict[str, object]], T],
    ) -> T:
        """The event of a signed IDS delivery, parsed by ``parse`` (which raises on a bad
        body); WebhookRefused when unsigned, badly signed, too old or seen before."""
        checked = signed_webhook.check(secret, body, signature, self.now().timestamp(), max_age_s)
        event = parse(checked.doc)
        if not self.first_delivery(checked.digest, max_age_s):
            raise WebhookRefused(signed_webhook.REFUSED)
        return event

    def first_delivery(self, digest: str, max_age_s: float) -> bool:
        """Remember an accepted delivery; False when it was seen before (a replay). Entries
        older than twice the accepted age are forgotten (their timestamps are refused anyway)."""
        at = self.now()
        with self.db.session() as s:
            s.execute(
                delete(m.ForensicDeliveryRow).where(
                    m.ForensicDeliveryRow.received_at < at - timedelta(seconds=2 * max_age_s)
                )
            )
        with self.db.session() as s:
            try:
                with s.begin_nested():  # a savepoint: a repeat's failed insert undoes only itself
                    s.add(m.ForensicDeliveryRow(digest=digest, received_at=at))
            except IntegrityError:
                return False
        return True

    # -- the VM ----------------------------------------------------------------------------
    def suspect(self, ref: str) -> Suspect:
        with self.db.session() as s:
            rows = s.execute(
                select(m.VM.uuid, m.VM.name, m.Host.name)
                .join(m.Host, m.VM.host_id == m.Host.id)
                .where(m.VM.deleted_at.is_(None))
                .where((m.VM.name == ref) | (m.VM.uuid == ref.lower()))
            ).all()
        if len(rows) != 1:
            what = "no VM" if not rows else f"{len(rows)} VMs"
            raise NotFoundError(f"{what} named {ref[:80]!r} on a known host; run 'corral sync'.")
        uuid, name, host = rows[0]
        return Suspect(str(uuid), str(name), str(host))
