"""One writer at a time per process on SQLite, queued instead of polling.

SQLite lets one connection write at a time. A connection that finds the database locked
sleeps and retries (SQLite's busy handler backs off to 100 ms sleeps), so under many
concurrent writers (the API's thread pool) a waiter can keep missing its turn: the
concurrency probe saw a metadata write wait 1 to 2 s behind a stream of others. The gate
queues this process's writers on a lock instead, so each one starts the moment the previous
one commits; other processes still meet SQLite's own lock and busy handler.

A connection takes the gate at its transaction's first write statement and gives it back at
commit or rollback (or when the pool resets it). A nested session of the holder's
thread goes straight on to SQLite's lock (and fails there as before) instead of waiting
forever on itself; a wait longer than ``timeout_s`` also goes on to SQLite.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, event

_WRITES = ("insert", "update", "delete", "replace")


class WriteGate:
    """Attached to one SQLite engine: see the module's docstring."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        self._lock = threading.Lock()  # a plain lock: any thread may give it back
        self._holder: int | None = None  # id() of the DBAPI connection holding the gate
        self._owner: int | None = None  # the thread that took it
        self._timeout_s = timeout_s

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before_execute)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)
        event.listen(engine.pool, "reset", self._reset)
        event.listen(engine.pool, "close", self._reset)

    def _before_execute(
        self, conn: Any, _cursor: Any, statement: str, *_args: Any, **_kw: Any
    ) -> None:
        key = id(conn.connection.dbapi_connection)
        if key == self._holder or self._owner == threading.get_ident():
            return  # holds it already, or a nested session of the holder's thread
        if not statement.lstrip()[:7].lower().startswith(_WRITES):
            return
        if self._lock.acquire(timeout=self._timeout_s):
            self._holder, self._owner = key, threading.get_ident()

    def _end(self, conn: Any) -> None:
        self._release(id(conn.connection.dbapi_connection))

    def _reset(self, dbapi_conn: Any, *_args: Any) -> None:
        self._release(id(dbapi_conn))

    def _release(self, key: int) -> None:
        if key == self._holder:
            self._holder = self._owner = None
            self._lock.release()
