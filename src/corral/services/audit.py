"""The audit log: every write by anyone, in one append-only, hash-chained table.

Why a session hook and not a call in each service: every write Corral makes goes through a
SQLAlchemy session, so one ``after_flush`` listener sees each created, changed and deleted row
of the watched tables (``WATCHED``) with its before and after values, and appends the entries
in the same transaction — a write without its entry cannot commit. Who acts comes from
``acting_as`` (the API's ``require`` dependency sets it per request, the CLI once per process);
writes with no actor (the job runner's bookkeeping, a timer's sync) are the system's own.

The chain: entry ``seq`` n carries the hash of entry n-1 and its own hash over its content
(SHA-256 of canonical JSON). Writers first update the one ``audit_head`` row, whose row lock
(PostgreSQL) or write lock (SQLite) makes concurrent transactions append one after another,
so the chain never forks. ``verify`` recomputes it and names the first entry that is changed,
missing or inserted.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import event, insert, inspect, select, update
from sqlalchemy.orm import Session

from corral.store import models as m
from corral.store.db import Database

GENESIS = "0" * 64
HEAD_ID = 1
HIDDEN = "<hidden>"  # what a secret column is recorded as


@dataclass(frozen=True, slots=True)
class Actor:
    """Who writes: a user, the roles they act with, and from where (IP or 'cli:<os user>')."""

    user: str
    roles: str
    origin: str


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("corral_actor", default=None)


def set_actor(actor: Actor | None) -> None:
    """Who the writes of this context (a request, a CLI process) are recorded as."""
    _actor.set(actor)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


@dataclass(frozen=True, slots=True)
class Watched:
    """A table whose writes are audited: its kind, the target key, the columns recorded."""

    kind: str
    key: Callable[[Any], object]
    columns: tuple[str, ...]
    secrets: frozenset[str] = frozenset()


_META = ("owner", "department", "purpose", "project", "environment", "expires_on")
#: Only the columns people set: a sync's discovered state (power, sizes, timestamps) is not
#: a person's write and would drown the log.
WATCHED: dict[type[m.Base], Watched] = {
    m.Host: Watched(
        "host", lambda h: h.name, ("name", "uri", "username", "secret"), frozenset({"secret"})
    ),
    m.VM: Watched("vm", lambda v: v.uuid, (*_META, "protection_tier", "created_by", "tags")),
    m.ReclaimCase: Watched(
        "reclaim-case",
        lambda c: c.id,
        (
            "vm_uuid",
            "state",
            "category",
            "reason",
            "owner",
            "department",
            "extended_until",
            "extend_reason",
            "closed_by",
        ),
    ),
    m.ReclaimApproval: Watched(
        "reclaim-approval", lambda a: a.case_id, ("step", "approver", "note")
    ),
    m.Job: Watched("job", lambda j: j.id, ("kind", "submitted_by", "cancel_requested")),
    m.ApiToken: Watched("token", lambda t: t.name, ("name", "prefix", "revoked_at")),
    m.TokenOwner: Watched("token-owner", lambda o: o.token_id, ("token_id", "user_id")),
    m.User: Watched(
        "user",
        lambda u: u.name,
        ("name", "email", "password_hash", "disabled_at"),
        frozenset({"password_hash"}),
    ),
    m.UserRole: Watched("user-role", lambda r: r.user_id, ("user_id", "role")),
    m.UserDepartment: Watched("user-department", lambda d: d.user_id, ("user_id", "department")),
    m.TemplateRow: Watched(
        "template",
        lambda t: t.name,
        ("name", "pool", "volume", "vcpus", "memory_mib", "network", "domain_type", "kernel"),
    ),
    m.ProvisionRow: Watched(
        "provision",
        lambda p: p.id,
        ("name", "host", "template", "status", "reason", "vm_uuid", "created_by", "request_id"),
    ),
    # Every transition of the HA manager (corral ha run) is an event row: each is audited.
    m.HAEventRow: Watched("ha-event", lambda e: e.id, ("manager", "kind", "host", "vm", "detail")),
    m.HAMaintenanceRow: Watched(
        "ha-maintenance", lambda r: f"{r.manager}/{r.host}", ("manager", "host", "state", "moves")
    ),
    m.AlertRow: Watched("alert", lambda a: a.fingerprint, ("rule", "state", "acked_by")),
    m.AlertSilenceRow: Watched(
        "alert-silence", lambda s: s.id, ("matchers", "ends_at", "comment", "created_by")
    ),
    # VM requests, their decisions and reservations, quotas (issue 10 items 2-4)
    m.VMRequest: Watched(
        "request",
        lambda r: r.id,
        (
            "kind",
            "vm_uuid",
            "requester",
            "owner",
            "department",
            "purpose",
            "environment",
            "template",
            "count",
            "vcpus",
            "memory_mib",
            "disk_gb",
            "lease_days",
            "monthly_cost",
            "state",
            "failure_reason",
        ),
    ),
    m.RequestDecision: Watched(
        "request-decision", lambda d: d.request_id, ("actor", "action", "note", "reasons")
    ),
    m.RequestReservation: Watched(
        "reservation", lambda r: r.request_id, ("host", "vm", "vcpus", "memory_mib", "disk_gb")
    ),
    m.Quota: Watched(
        "quota",
        lambda q: q.department,
        ("vcpus", "memory_mib", "storage_gb", "vms", "monthly_cost", "updated_by"),
    ),
    # The VMs an approved request makes: claimed, made, rolled back (request -> VM)
    m.RequestVMRow: Watched(
        "request-vm", lambda v: v.request_id, ("name", "host", "tier", "state", "uuid")
    ),
    # A deployed blueprint: each deploy, stop, redeploy and teardown is its own entry.
    m.UnitRow: Watched(
        "unit", lambda u: u.request_id, ("network", "hosts", "state", "op", "last_error")
    ),
    m.BackupPointRow: Watched(
        "restore-point", lambda p: p.id, ("vm_uuid", "vm_name", "kind", "parent_id", "checkpoint")
    ),
    m.BackupHoldRow: Watched(
        "restore-point-hold", lambda h: h.point_id, ("point_id", "vm_uuid", "held_by", "reason")
    ),
    m.BackupRestoreRow: Watched(
        "restore", lambda r: r.point_id, ("point_id", "mode", "host", "vm_name", "new_uuid")
    ),
    m.RestoreTestRow: Watched(
        "restore-test", lambda r: r.point_id, ("vm_name", "point_id", "host", "ok", "seconds")
    ),
    # Chain of custody of forensic evidence: who, when, why, every file with its SHA-256.
    m.ForensicRecordRow: Watched(
        "forensic",
        lambda r: r.id,
        (
            "kind",
            "vm_uuid",
            "vm_name",
            "host",
            "actor",
            "reason",
            "at",
            "files",
            "isolated_to",
            "point_id",
            "evidence_id",
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class Change:
    action: str  # create, update, delete
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _plain(value: object) -> object:
    """A JSON value that reads back equal, so the hash of a stored entry can be recomputed."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return HIDDEN
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _values(obj: object, spec: Watched, *, old: bool) -> dict[str, Any]:
    state = inspect(obj)
    out: dict[str, Any] = {}
    for col in spec.columns:
        hist = state.attrs[col].history
        if old:
            value = hist.deleted[0] if hist.deleted else (hist.unchanged or [None])[0]
        else:
            value = state.attrs[col].value
        out[col] = HIDDEN if col in spec.secrets and value is not None else _plain(value)
    return out


def _changes(session: Session) -> list[Change]:
    found: list[Change] = []
    for obj in session.new:
        spec = WATCHED.get(type(obj))
        if spec:
            found.append(Change("create", _target(spec, obj), None, _values(obj, spec, old=False)))
    for obj in session.dirty:
        spec = WATCHED.get(type(obj))
        if spec is None or not session.is_modified(obj):
            continue
        state = inspect(obj)
        changed = [c for c in spec.columns if state.attrs[c].history.has_changes()]
        if changed:
            before = _values(obj, spec, old=True)
            after = _values(obj, spec, old=False)
            found.append(
                Change(
                    "update",
                    _target(spec, obj),
                    {c: before[c] for c in changed},
                    {c: after[c] for c in changed},
                )
            )
    for obj in session.deleted:
        spec = WATCHED.get(type(obj))
        if spec:
            found.append(Change("delete", _target(spec, obj), _values(obj, spec, old=True), None))
    return found


def _target(spec: Watched, obj: object) -> str:
    return f"{spec.kind}:{spec.key(obj)}"


def entry_hash(fields: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an entry's fields (its previous hash included)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _fields(
    seq: int, at: datetime, actor: Actor | m.AuditEntry, change: Change | m.AuditEntry, prev: str
) -> dict[str, Any]:
    roles = actor.roles
    origin = actor.origin
    user = actor.user if isinstance(actor, Actor) else actor.actor
    return {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(),
        "actor": user,
        "roles": roles,
        "origin": origin,
        "action": change.action,
        "target": change.target,
        "before": change.before,
        "after": change.after,
        "prev_hash": prev,
    }


def _after_flush(session: Session, _context: object) -> None:
    actor = _actor.get()
    if actor is None:
        return
    changes = _changes(session)
    if changes:
        append(session, actor, changes)


def append(session: Session, actor: Actor, changes: list[Change]) -> None:
    """Append ``changes`` to the chain inside the session's transaction.

    Updating the head row first takes its lock: a second writer waits here until the first
    commits, then reads the head the first one left, so the chain stays one line.
    """
    conn = session.connection()
    actor = Actor(actor.user[:64], actor.roles[:128], actor.origin[:256])
    changes = [Change(c.action, c.target[:256], c.before, c.after) for c in changes]
    n = len(changes)
    seq, prev = conn.execute(
        update(m.AuditHead)
        .where(m.AuditHead.id == HEAD_ID)
        .values(seq=m.AuditHead.seq + n)
        .returning(m.AuditHead.seq, m.AuditHead.hash)
    ).one()
    seq -= n
    at = datetime.now(UTC)
    rows = []
    for change in changes:
        seq += 1
        fields = _fields(seq, at, actor, change, prev)
        prev = entry_hash(fields)
        rows.append(
            {
                "seq": seq,
                "at": at,
                "actor": actor.user,
                "roles": actor.roles,
                "origin": actor.origin,
                "action": change.action,
                "target": change.target,
                "before": change.before,
                "after": change.after,
                "prev_hash": fields["prev_hash"],
                "hash": prev,
            }
        )
    conn.execute(insert(m.AuditEntry), rows)
    conn.execute(update(m.AuditHead).where(m.AuditHead.id == HEAD_ID).values(hash=prev))


def install() -> None:
    """Listen to every session's flushes (once per process)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)


install()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of ``verify``: how many entries were checked, and the first bad one."""

    entries: int
    first_bad: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.first_bad is None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: datetime
    actor: str
    roles: str
    origin: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    hash: str


class AuditLog:
    """Reading and checking the log (writing is the session hook's)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def verify(self, batch: int = 2000) -> Verdict:
        """Recompute the chain; the first entry changed, missing or inserted is named."""
        expected_seq, prev = 1, GENESIS
        with self.db.session() as s:
            last = 0
            while True:
                rows = s.scalars(
                    select(m.AuditEntry)
                    .where(m.AuditEntry.seq > last)
                    .order_by(m.AuditEntry.seq)
                    .limit(batch)
                ).all()
                for row in rows:
                    bad = _check(row, expected_seq, prev)
                    if bad:
                        return Verdict(expected_seq - 1, expected_seq, bad)
                    expected_seq, prev, last = row.seq + 1, row.hash, row.seq
                if len(rows) < batch:
                    break
                s.expunge_all()
            head = s.get(m.AuditHead, HEAD_ID)
            count = expected_seq - 1
            if head is None or head.seq != count or head.hash != prev:
                seen = head.seq if head else "none"
                return Verdict(
                    count,
                    count + 1 if head is None or head.seq > count else count,
                    f"the log ends at entry {count} but its head names entry {seen}: "
                    "entries were removed from, or added to, the end",
                )
        return Verdict(count)

    def list(
        self,
        *,
        user: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Entries oldest first; ``target`` matches exactly or as a prefix ending in ':'."""
        q = select(m.AuditEntry).where(m.AuditEntry.seq > after_seq)
        if user:
            q = q.where(m.AuditEntry.actor == user)
        if target:
            q = q.where(
                m.AuditEntry.target.startswith(target, autoescape=True)
                if target.endswith(":")
                else m.AuditEntry.target == target
            )
        if since:
            q = q.where(m.AuditEntry.at >= since)
        if until:
            q = q.where(m.AuditEntry.at < until)
        with self.db.session() as s:
            rows = s.scalars(q.order_by(m.AuditEntry.seq).limit(limit)).all()
            return [_record(r) for r in rows]


def _check(row: m.AuditEntry, expected_seq: int, prev: str) -> str:
    if row.seq != expected_seq:
        return f"entry {expected_seq} is missing (the next entry is {row.seq})"
    if row.prev_hash != prev:
        return f"entry {row.seq} does not follow entry {row.seq - 1} (an entry was removed)"
    if entry_hash(_fields(row.seq, row.at, row, row, prev)) != row.hash:
        return f"entry {row.seq} was changed after it was written"
    return ""


def _record(r: m.AuditEntry) -> AuditRecord:
    return AuditRecord(
        seq=r.seq,
        at=r.at,
        actor=r.actor,
        roles=r.roles,
        origin=r.origin,
        action=r.action,
        target=r.target,
        before=r.before,
        after=r.after,
        hash=r.hash,
    )
