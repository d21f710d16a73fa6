"""Who a browser session is, and what it may do: the one place the dashboard asks.

Why server-side sessions: the cookie holds only a random session id, so no token or role ever
reaches the browser, and signing out forgets the session on the server. They live in the
database (the id only as its hash), so every worker process of ``corral serve`` shares them.
A session signs in with a user's password or an API token and holds the same ``Principal``
the REST API authorizes; every page asks ``may`` (``corral.domain.access.decide``), and the
principal is read again from the store every ``RECHECK_S``: a revoked token, a disabled user
or a role taken away ends or narrows the session within that time.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session as OrmSession

from corral.domain.access import Permission, Principal, Role, Target, decide
from corral.store import models as m
from corral.store.db import Database

#: The cookie that carries the session id (HttpOnly, SameSite=Strict, Secure over https).
COOKIE = "corral_session"
#: A session unused this long is forgotten.
IDLE_S = 8 * 3600
#: How often a session's principal is read again: a revoked token, a disabled user or a role
#: taken away takes effect within this.
RECHECK_S = 60.0
#: At most this many sessions are kept (the least recently used go first).
MAX_SESSIONS = 10_000
#: A session's last use is written at most this often (not on every page).
SEEN_GRANULARITY_S = 60.0


class Credential(enum.StrEnum):
    """How a session signed in: what the periodic re-check looks up again."""

    token = "token"  # noqa: S105 -- a kind of credential, not one: an API token, by its name
    password = "password"  # noqa: S105 -- a user's password, by the user's name


@dataclass(frozen=True)
class Viewer:
    """Who a signed-in session is: the same principal the REST API authorizes."""

    principal: Principal
    credential: Credential
    #: The token's name or the user's name: the key the re-check looks up.
    key: str

    @property
    def name(self) -> str:
        return self.principal.user

    @property
    def roles(self) -> str:
        return self.principal.role_names or "no role"


def may(viewer: Viewer | None, permission: Permission, target: Target | None = None) -> bool:
    """Whether ``viewer`` may use ``permission`` (on ``target`` when given, else at all): the
    REST API's own decision (corral.domain.access.decide), asked on the server."""
    return viewer is not None and decide(viewer.principal, permission, target)


def sees_fleet(viewer: Viewer, permission: Permission) -> bool:
    """Whether ``permission`` reaches the whole fleet for ``viewer`` (not only departments)."""
    return viewer.principal.visible_departments(permission) is None


@dataclass
class Session:
    csrf: str
    viewer: Viewer | None = None
    #: Last use, seconds since the epoch (wall-clock: shared by every server process).
    seen: float = field(default_factory=time.time)
    #: When the viewer's credential was last found still valid (see ``due_for_check``).
    checked: float = field(default_factory=time.time)


class Sessions:
    """Sessions in the database, so every worker process of a server knows every session and
    signing out ends it everywhere. A row is keyed by the SHA-256 of the cookie's id (never the
    id itself: a copy of the table signs no one in); a session unused ``idle_s`` is refused and
    deleted; at most ``MAX_SESSIONS`` are kept (the least recently used go first)."""

    def __init__(self, db: Database, idle_s: float = IDLE_S) -> None:
        self.db = db
        self.idle_s = idle_s

    def start(self, viewer: Viewer | None = None) -> tuple[str, Session]:
        """A new session (with a new id: signing in never keeps an id a page saw before)."""
        sid = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), viewer=viewer)
        with self.db.session() as s:
            self._prune(s, session.seen)
            s.add(m.WebSession(id_hash=_hash(sid), csrf=session.csrf, **_stored(session)))
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        now = time.time()
        with self.db.session() as s:
            row = s.get(m.WebSession, _hash(sid))
            if row is None:
                return None
            if now - row.seen_at.timestamp() > self.idle_s:
                s.delete(row)
                return None
            if now - row.seen_at.timestamp() > SEEN_GRANULARITY_S:  # not a write per page
                row.seen_at = _moment(now)
            return _session(row, now)

    def save(self, sid: str | None, session: Session) -> None:
        """Keep ``session``'s viewer and check time (after a re-check) for every process."""
        with self.db.session() as s:
            s.execute(
                update(m.WebSession)
                .where(m.WebSession.id_hash == _hash(sid or ""))
                .values(**_stored(session))
            )

    def end(self, sid: str | None) -> None:
        with self.db.session() as s:
            s.execute(delete(m.WebSession).where(m.WebSession.id_hash == _hash(sid or "")))

    def _prune(self, s: OrmSession, now: float) -> None:
        """Forget idle sessions, and the least recently used beyond ``MAX_SESSIONS``."""
        s.execute(delete(m.WebSession).where(m.WebSession.seen_at < _moment(now - self.idle_s)))
        kept = s.scalar(select(func.count()).select_from(m.WebSession)) or 0
        if kept >= MAX_SESSIONS:
            oldest = (
                select(m.WebSession.id_hash)
                .order_by(m.WebSession.seen_at)
                .limit(kept - MAX_SESSIONS + 1)
            )
            s.execute(delete(m.WebSession).where(m.WebSession.id_hash.in_(oldest)))


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _stored(session: Session) -> dict[str, Any]:
    viewer = session.viewer
    principal = viewer.principal if viewer else None
    return {
        "credential": viewer.credential.value if viewer else None,
        "key": viewer.key if viewer else None,
        "user_name": principal.user if principal else None,
        "roles": sorted(r.value for r in principal.roles) if principal else [],
        "departments": sorted(principal.departments) if principal else [],
        "seen_at": _moment(session.seen),
        "checked_at": _moment(session.checked),
    }


def _session(row: m.WebSession, now: float) -> Session:
    viewer = None
    if row.credential is not None and row.user_name is not None and row.key is not None:
        principal = Principal(
            user=row.user_name,
            roles=frozenset(Role(r) for r in row.roles),
            departments=frozenset(row.departments),
        )
        viewer = Viewer(principal, Credential(row.credential), row.key)
    return Session(csrf=row.csrf, viewer=viewer, seen=now, checked=row.checked_at.timestamp())


def due_for_check(session: Session, now: float | None = None) -> bool:
    return (time.time() if now is None else now) - session.checked > RECHECK_S


def csrf_ok(session: Session | None, sent: str) -> bool:
    """The form's CSRF field matches its session's (compared in constant time)."""
    return session is not None and bool(sent) and hmac.compare_digest(session.csrf, sent)
