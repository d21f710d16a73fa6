"""Who a browser session is, and what it may do: the one place the dashboard asks.

Why server-side sessions: the cookie holds only a random session id, so no token or role ever
reaches the browser, and signing out forgets the session on the server. Signing in takes an
API token today (``corral token create NAME``); the roles of the users issue plug into
``may`` and ``Viewer.role`` without touching a page.
"""

from __future__ import annotations

import enum
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

#: The cookie that carries the session id (HttpOnly, SameSite=Strict, Secure over https).
COOKIE = "corral_session"
#: A session unused this long is forgotten.
IDLE_S = 8 * 3600
#: How often a session's token is checked again: a revoked token's sessions end within this.
RECHECK_S = 60.0
#: At most this many sessions are kept (the oldest go first): memory stays bounded.
MAX_SESSIONS = 10_000


class Role(enum.StrEnum):
    administrator = "administrator"
    manager = "manager"


class Action(enum.StrEnum):
    """What a page or a form does, named for the authorization check."""

    view_fleet = "view-fleet"  # hosts, VMs, events, administrator's landing page
    view_money = "view-money"  # costs, waste, chargeback: the manager's landing page
    view_people = "view-people"  # owners, reclamation cases
    flag_vm = "flag-vm"  # open a reclamation case


#: What each role may do. An API token is full power in the REST API today, so a token's
#: session is an administrator (who also sees the manager's page).
ALLOWED: dict[Role, frozenset[Action]] = {
    Role.administrator: frozenset(Action),
    Role.manager: frozenset({Action.view_money, Action.view_people}),
}


@dataclass(frozen=True)
class Viewer:
    name: str
    role: Role


def may(viewer: Viewer | None, action: Action) -> bool:
    """Whether ``viewer`` may do ``action``: every page and form asks this, on the server."""
    return viewer is not None and action in ALLOWED[viewer.role]


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
