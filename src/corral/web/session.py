"""Who a browser session is, and what it may do: the one place the dashboard asks.

Why server-side sessions: the cookie holds only a random session id, so no token or role ever
reaches the browser, and signing out forgets the session on the server. A session signs in with
a user's password or an API token and holds the same ``Principal`` the REST API authorizes;
every page asks ``may`` (``corral.domain.access.decide``), and the principal is read again from
the store every ``RECHECK_S``: a revoked token, a disabled user or a role taken away ends or
narrows the session within that time.
"""

from __future__ import annotations

import enum
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from corral.domain.access import Permission, Principal, Target, decide

#: The cookie that carries the session id (HttpOnly, SameSite=Strict, Secure over https).
COOKIE = "corral_session"
#: A session unused this long is forgotten.
IDLE_S = 8 * 3600
#: How often a session's principal is read again: a revoked token, a disabled user or a role
#: taken away takes effect within this.
RECHECK_S = 60.0
#: At most this many sessions are kept (the oldest go first): memory stays bounded.
MAX_SESSIONS = 10_000


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
    seen: float = field(default_factory=time.monotonic)
    #: When the viewer's credential was last found still valid (see ``still_valid``).
    checked: float = field(default_factory=time.monotonic)


class Sessions:
    """Sessions in this process's memory: a restart signs everyone out, which is safe."""

    def __init__(self, idle_s: float = IDLE_S) -> None:
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.idle_s = idle_s

    def start(self, viewer: Viewer | None = None) -> tuple[str, Session]:
        """A new session (with a new id: signing in never keeps an id a page saw before)."""
        sid = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), viewer=viewer)
        with self._lock:
            if len(self._by_id) >= MAX_SESSIONS:
                oldest = min(self._by_id, key=lambda k: self._by_id[k].seen)
                del self._by_id[oldest]
            self._by_id[sid] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._by_id.get(sid)
            if session is None:
                return None
            if now - session.seen > self.idle_s:
                del self._by_id[sid]
                return None
            session.seen = now
            return session

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)


def due_for_check(session: Session, now: float | None = None) -> bool:
    return (time.monotonic() if now is None else now) - session.checked > RECHECK_S


def csrf_ok(session: Session | None, sent: str) -> bool:
    """The form's CSRF field matches its session's (compared in constant time)."""
    return session is not None and bool(sent) and hmac.compare_digest(session.csrf, sent)
