"""Which HA manager instance leads: the database's own locking decides.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a dedicated
connection. The server releases it the moment that connection ends, so a leader killed
with SIGKILL hands over as soon as its socket closes, with no lease to expire; a leader
checks each round that it still holds the lock (its connection may have been cut) and
stops acting the moment it does not.

SQLite has no such lock shared between processes: there, one instance runs and always
leads (a second one against the same file is not supported; use PostgreSQL for two).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from corral.store.db import Database

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable advisory-lock key for manager ``name`` (56 bits: positive as a bigint)."""
    digest = hashlib.sha256(f"corral-ha-manager:{name}".encode()).digest()
    return int.from_bytes(digest[:7], "big")


class Leadership:
    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.key = lock_key(name)
        self._conn: Connection | None = None
        self.shared = db.backend == "postgresql"

    def acquire(self) -> bool:
        """Try once to lead (never waits); True when this instance leads now."""
        if not self.shared:
            return True
        if self._conn is not None:
            return self.held()
        try:
            conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            taken = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
            got = bool(taken.scalar())
        except SQLAlchemyError as exc:
            log.info("cannot reach the database to take the lead: %s", exc.__class__.__name__)
            return False
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def held(self) -> bool:
        """Still the leader: the lock's connection answers and the server lists the lock."""
        if not self.shared:
            return True
        if self._conn is None:
            return False
        try:
            count = self._conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid()"
                    " AND ((classid::bigint << 32) | objid::bigint) = (:k)::bigint"
                ),
                {"k": self.key},
            ).scalar()
        except SQLAlchemyError:
            self._lose()
            return False
        if not count:
            self._lose()
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(SQLAlchemyError):  # a lost connection took the lock with it
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        self._lose()

    def _lose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except SQLAlchemyError:
                log.debug("closing the leader connection failed", exc_info=True)
