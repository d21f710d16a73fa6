"""The polling schedule in the database: due times, leases, fingerprints, and the status.

Shards are symmetric processes that *claim* due hosts with a lease row (PostgreSQL: ``FOR
UPDATE SKIP LOCKED``, so two shards never wait on, nor take, the same host; SQLite: under its
write lock). A shard that dies holding hosts loses them when the lease runs out and the
others take them; a fixed hash partition would instead leave a dead shard's hosts unread
until someone restarted it, and would need every shard to agree on how many there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import false, func, insert, or_, select, update
from sqlalchemy.orm import Session

from corral.engines.polling import is_overdue, next_due
from corral.store import models as m
from corral.store.db import Database


@dataclass(frozen=True, slots=True)
class Claimed:
    """A host a shard holds: what reading it needs, and what the last read left."""

    host_id: int
    name: str
    uri: str
    username: str | None
    secret: bytes | None
    status: str
    fingerprint: str
    due_at: datetime
    wanted: bool  # a lifecycle event asked for this read


@dataclass(frozen=True, slots=True)
class ReadResult:
    host_id: int
    fingerprint: str  # "" when the read failed or the sync did not take it
    error: str | None
    reason: str  # schedule or event
    scheduled: bool  # the host was due: its next due time moves on


@dataclass(frozen=True, slots=True)
class PollStatus:
    cycle_s: float
    hosts: int
    read_in_cycle: int
    overdue: int
    never_read: int
    leased: int
    shards: tuple[str, ...]  # processes that read a host within the last cycle
    overdue_hosts: tuple[str, ...]  # the first ones, longest waiting first
    oldest_read_age_s: float | None


def _epoch(t: datetime) -> float:
    return t.timestamp()


def _at(seconds: float, like: datetime) -> datetime:
    return datetime.fromtimestamp(seconds, like.tzinfo)


class PollStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def host_names(self) -> dict[str, int]:
        with self.db.session() as s:
            return {name: hid for hid, name in s.execute(select(m.Host.id, m.Host.name))}

    def add_missing(self, now: datetime, phase_of: Mapping[str, float], cycle_s: float) -> int:
        """Give every host without a schedule row its first due time: its next slot."""
        with self.db.session() as s:
            rows = s.execute(
                select(m.Host.id, m.Host.name)
                .outerjoin(m.PollState, m.PollState.host_id == m.Host.id)
                .where(m.PollState.host_id.is_(None))
            ).all()
            fresh = [
                {
                    "host_id": hid,
                    "due_at": _at(next_due(phase_of.get(name, 0.0), _epoch(now), cycle_s), now),
                    "fingerprint": "",
                    "reads": 0,
                }
                for hid, name in rows
            ]
            for i in range(0, len(fresh), 1000):
                s.execute(insert(m.PollState), fresh[i : i + 1000])
        return len(fresh)

    def claim(self, owner: str, now: datetime, lease_s: float, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` hosts that are due (or wanted by an event), oldest first."""
        st = m.PollState
        free = or_(st.lease_until.is_(None), st.lease_until < now)
        due = or_(st.due_at <= now, st.wanted_at <= now)
        with self.db.session() as s:
            _write_lock(s)
            q = (
                select(st.host_id)
                .where(due, free)
                .order_by(func.coalesce(st.wanted_at, st.due_at))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            ids = list(s.scalars(q))
            if not ids:
                return []
            s.execute(
                update(st)
                .where(st.host_id.in_(ids))
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_s)),
                execution_options={"synchronize_session": False},
            )
            rows = s.execute(
                select(
                    m.Host.id,
                    m.Host.name,
                    m.Host.uri,
                    m.Host.username,
                    m.Host.secret,
                    m.Host.status,
                    st.fingerprint,
                    st.due_at,
                    st.wanted_at,
                )
                .join(st, st.host_id == m.Host.id)
                .where(m.Host.id.in_(ids))
            ).all()
        return [
            Claimed(
                hid, name, uri, user, secret, status, fp, due, wanted is not None and wanted <= now
            )
            for hid, name, uri, user, secret, status, fp, due, wanted in rows
        ]

    def finish(
        self,
        owner: str,
        claimed_at: datetime,
        read_at: datetime,
        results: Iterable[ReadResult],
        due_of: Mapping[int, datetime],
    ) -> None:
        """Record the reads, move scheduled hosts to their next slot, and free the leases."""
        st = m.PollState
        rows = []
        for r in results:
            row = {
                "host_id": r.host_id,
                "read_at": read_at,
                "read_by": owner,
                "reason": r.reason,
                "fingerprint": r.fingerprint,
                "error": r.error,
                "lease_owner": None,
                "lease_until": None,
            }
            if r.scheduled:
                row["due_at"] = due_of[r.host_id]
            rows.append(row)
        if not rows:
            return
        ids = [r["host_id"] for r in rows]
        with self.db.session() as s:
            scheduled = [r for r in rows if "due_at" in r]
            plain = [r for r in rows if "due_at" not in r]
            for batch in (scheduled, plain):
                if batch:
                    s.execute(update(st), batch)
            s.execute(
                update(st)
                .where(st.host_id.in_(ids), st.wanted_at <= claimed_at)
                .values(wanted_at=None),
                execution_options={"synchronize_session": False},
            )
            s.execute(
                update(st).where(st.host_id.in_(ids)).values(reads=st.reads + 1),
                execution_options={"synchronize_session": False},
            )

    def want(self, host_ids: Iterable[int], now: datetime) -> None:
        """A lifecycle event: read these hosts now instead of at their slot."""
        ids = sorted(set(host_ids))
        if not ids:
            return
        st = m.PollState
        with self.db.session() as s:
            s.execute(
                update(st)
                .where(st.host_id.in_(ids), or_(st.wanted_at.is_(None), st.wanted_at > now))
                .values(wanted_at=now),
                execution_options={"synchronize_session": False},
            )

    def next_wake(self) -> datetime | None:
        """The earliest due or wanted time over all hosts (a shard sleeps until then)."""
        st = m.PollState
        with self.db.session() as s:
            due = s.scalar(select(func.min(st.due_at)))
            wanted = s.scalar(select(func.min(st.wanted_at)))
        times = [t for t in (due, wanted) if t is not None]
        return min(times) if times else None

    def status(self, now: datetime, cycle_s: float, shown: int = 20) -> PollStatus:
        st = m.PollState
        with self.db.session() as s:
            rows = s.execute(
                select(
                    m.Host.name, m.Host.created_at, st.read_at, st.read_by, st.lease_until
                ).outerjoin(st, st.host_id == m.Host.id)
            ).all()
        t = _epoch(now)
        late: list[tuple[float, str]] = []
        shards: set[str] = set()
        never = leased = 0
        oldest: float | None = None
        for name, created, read_at, read_by, lease_until in rows:
            last = None if read_at is None else _epoch(read_at)
            if last is None:
                never += 1
            else:
                oldest = max(oldest or 0.0, t - last)
                if t - last <= cycle_s and read_by:
                    shards.add(read_by)
            if lease_until is not None and lease_until > now:
                leased += 1
            if is_overdue(last, _epoch(created), t, cycle_s):
                late.append((last if last is not None else _epoch(created), name))
        late.sort()
        return PollStatus(
            cycle_s=cycle_s,
            hosts=len(rows),
            read_in_cycle=sum(1 for r in rows if r[2] is not None and t - _epoch(r[2]) <= cycle_s),
            overdue=len(late),
            never_read=never,
            leased=leased,
            shards=tuple(sorted(shards)),
            overdue_hosts=tuple(name for _, name in late[:shown]),
            oldest_read_age_s=oldest,
        )


def _write_lock(s: Session) -> None:
    """SQLite: take the write lock before reading what to claim (PostgreSQL locks rows)."""
    if s.get_bind().dialect.name == "sqlite":
        s.execute(
            update(m.PollState).where(false()).values(host_id=m.PollState.host_id),
            execution_options={"synchronize_session": False},
        )


__all__ = ["Claimed", "PollStatus", "PollStore", "ReadResult"]
