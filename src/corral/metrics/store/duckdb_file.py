"""One DuckDB file shared by several processes: opened per operation, the lock retried.

DuckDB locks a file for as long as a connection is open: a read-write
connection shuts out every other process, even read-only ones; read-only
connections (any number, from any process) shut out writers. A store that
holds its connection therefore serves one process, and ``corral serve`` with
its collector would lock every other command out. So the file is opened for
each operation, read-only to read and read-write to write, and closed once it
has been idle for ``linger_s`` (a report asking hundreds of questions in a row
opens it once). A process that finds the file locked touches ``PATH.wait``
and tries again every few milliseconds for up to ``lock_wait_s``, then gives
up with a clear error; a connection in steady use that sees someone waiting
lets go after ``hold_s`` for ``handoff_s``, so a long backfill or a busy
server lets others in between its steps (and pays nothing when nobody waits).

Within one process DuckDB refuses a read-only and a read-write connection to
the same file at once, so all users of one path share one ``SharedFile``.

At exit every file is closed by the main thread (``close_all``, registered with ``atexit``).
Why: the idle closer is a daemon thread, and one still inside DuckDB's C++ code when the
interpreter stops its daemon threads makes the C++ runtime abort the whole process
("terminate called ... exception not rethrown"), seen at the end of short commands that
had just read the file.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from corral.errors import StoreError

#: DuckDB's message when another process holds a conflicting lock on the file.
_LOCKED = "Could not set lock on file"

_registry: dict[str, SharedFile] = {}
_registry_lock = threading.Lock()


def shared_file(path: str, prepare: Callable[[Any], None]) -> SharedFile:
    """The one ``SharedFile`` of ``path`` in this process; its next opening prepares the file
    again (a new store may find a file another program replaced or wrote in the meantime)."""
    key = str(Path(path).resolve())
    with _registry_lock:
        if key not in _registry:
            _registry[key] = SharedFile(key, prepare)
        _registry[key].prepared = False
        return _registry[key]


@atexit.register
def close_all() -> None:
    """Stop every idle closer and close every file, from the calling (main) thread."""
    with _registry_lock:
        files = list(_registry.values())
    for shared in files:
        shared.shutdown()


class SharedFile:
    """Hands out a connection to the file for one operation at a time, in this process."""

    def __init__(
        self,
        path: str,
        prepare: Callable[[Any], None],
        *,
        lock_wait_s: float = 30.0,
        linger_s: float = 0.2,
        hold_s: float = 1.0,
        handoff_s: float = 0.05,
    ) -> None:
        self.path = path
        self.lock_wait_s = lock_wait_s
        self.linger_s = linger_s
        self.hold_s = hold_s
        self.handoff_s = handoff_s
        self._prepare = prepare
        self.prepared = False
        self._lock = threading.RLock()
        self._conn: Any = None
        self._writable = False
        self._opened = self._opened_wall = 0.0
        self._wait_path = path + ".wait"
        self._last_use = 0.0
        self._depth = 0
        self._closer: threading.Timer | None = None

    @contextmanager
    def connect(self, write: bool) -> Iterator[Any]:
        """A connection for one operation; others in this process wait for it to end."""
        with self._lock:
            if self._depth == 0 and self._conn is not None and self._others_wait():
                self._close()
                time.sleep(self.handoff_s)  # the waiting process takes the file now
            conn = self._connection(write)
            self._depth += 1
            try:
                yield conn
            finally:
                self._depth -= 1
                self._last_use = time.monotonic()
                self._schedule_close()

    def close(self) -> None:
        with self._lock:
            self._close()

    def shutdown(self) -> None:
        """Cancel a pending idle close and close now (waits for a closer already running)."""
        with self._lock:
            closer, self._closer = self._closer, None
            if closer is not None:
                closer.cancel()
            self._close()

    # -- opening -----------------------------------------------------------------
    def _connection(self, write: bool) -> Any:
        if self._conn is not None and (self._writable or not write):
            return self._conn
        if self._depth:
            raise StoreError("a read-only use of the metrics file tried to write inside it.")
        self._close()
        if not self.prepared:  # create the schema and migrate, once per new store
            conn = self._open(read_only=False)
            try:
                self._prepare(conn)
            except BaseException:
                conn.close()
                raise
            self._conn, self._writable, self.prepared = conn, True, True
        else:
            self._conn, self._writable = self._open(read_only=not write), write
        self._opened, self._opened_wall = time.monotonic(), time.time()
        return self._conn

    def _others_wait(self) -> bool:
        """Held past ``hold_s`` while another process has been waiting since it was opened."""
        if time.monotonic() - self._opened <= self.hold_s:
            return False
        try:
            return os.stat(self._wait_path).st_mtime > self._opened_wall
        except OSError:
            return False

    def _signal_waiting(self) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(self._wait_path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
            os.utime(self._wait_path)

    def _open(self, read_only: bool) -> Any:
        """Open the file, waiting with growing pauses while another process holds it."""
        import duckdb

        deadline = time.monotonic() + self.lock_wait_s
        while True:
            try:
                conn = duckdb.connect(self.path, read_only=read_only)
                conn.execute("SET preserve_insertion_order = false")
                return conn
            except duckdb.Error as exc:
                if _LOCKED not in str(exc):
                    raise StoreError(f"cannot open the metrics file {self.path}: {exc}") from None
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"the metrics file {self.path} stayed locked by another process for "
                        f"{self.lock_wait_s:g} s; try again when it is less busy, or use a "
                        "VictoriaMetrics server (metrics_url) for heavy concurrent use."
                    ) from None
            self._signal_waiting()
            time.sleep(0.005 + 0.01 * random.random())  # jitter

    # -- closing -----------------------------------------------------------------
    def _schedule_close(self) -> None:
        if self._closer is not None:
            return
        self._closer = threading.Timer(self.linger_s, self._close_if_idle)
        self._closer.daemon = True
        self._closer.start()

    def _close_if_idle(self) -> None:
        with self._lock:
            self._closer = None
            if self._conn is None:
                return
            idle = time.monotonic() - self._last_use
            if idle >= self.linger_s:
                self._close()
            else:
                self._closer = threading.Timer(self.linger_s - idle, self._close_if_idle)
                self._closer.daemon = True
                self._closer.start()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
