"""The SQLite write gate: writers of one process queue on it; it never leaks or deadlocks.

Real SQLite files, real threads. Speed is the concurrency probe's business
(benchmarks/probe_concurrency.py); these tests hold the gate to what it must never do.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from corral.errors import StoreError
from corral.store.db import Database

BUSY_MS = 50  # SQLite's own wait for its lock, short so that a test fails fast


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")

    def short_busy_wait(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")

    event.listen(database.engine, "connect", short_busy_wait)
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO t (k, v) VALUES (1, 0)"))
    return database


def _gate_free(db: Database) -> bool:
    """True when another thread can take the write lock at once."""
    done = threading.Event()

    def write() -> None:
        with db.session() as s:
            s.execute(text("UPDATE t SET v = v WHERE k = 1"))
        done.set()

    t = threading.Thread(target=write, daemon=True)
    t.start()
    return done.wait(timeout=3)


def test_a_writer_holds_the_gate_from_its_first_write_until_commit(db: Database) -> None:
    entered, release = threading.Event(), threading.Event()

    def holder() -> None:
        with db.session() as s:
            s.execute(text("UPDATE t SET v = v + 1 WHERE k = 1"))
            entered.set()
            release.wait(timeout=10)

    t = threading.Thread(target=holder)
    t.start()
    assert entered.wait(timeout=5)
    assert not _gate_free(db)  # queued behind the holder, not failed
    release.set()
    t.join(timeout=10)
    assert _gate_free(db)


def test_a_reader_does_not_take_the_gate(db: Database) -> None:
    with db.session() as s:
        assert s.execute(text("SELECT v FROM t WHERE k = 1")).scalar_one() == 0
        assert _gate_free(db)


def test_the_gate_is_given_back_when_the_transaction_fails(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as s:
        s.execute(text("UPDATE t SET v = 5 WHERE k = 1"))
        raise RuntimeError("half-way")
    assert _gate_free(db)
    with pytest.raises(StoreError), db.session() as s:
        s.execute(text("INSERT INTO t (k, v) VALUES (1, 1)"))  # duplicate key
    assert _gate_free(db)
    with db.session() as s:
        assert s.execute(text("SELECT v FROM t WHERE k = 1")).scalar_one() == 0


def test_a_nested_write_of_the_holders_thread_fails_on_sqlites_lock_instead_of_hanging(
    db: Database,
) -> None:
    outcome: list[BaseException | None] = []

    def nested() -> None:
        try:
            with db.session() as outer:
                outer.execute(text("UPDATE t SET v = 1 WHERE k = 1"))
                with db.session() as inner:
                    inner.execute(text("UPDATE t SET v = 2 WHERE k = 1"))
            outcome.append(None)
        except StoreError as exc:
            outcome.append(exc)

    t = threading.Thread(target=nested, daemon=True)
    t.start()
    t.join(timeout=20)
    assert not t.is_alive(), "a nested write waited on its own thread's gate"
    assert isinstance(outcome[0], StoreError) and "locked" in str(outcome[0])
    assert _gate_free(db)


def test_writers_of_one_process_queue_instead_of_failing_on_sqlites_lock(db: Database) -> None:
    """Each transaction holds the lock twice as long as SQLite's busy wait: without the gate,
    writers that find the database locked give up with "database is locked"."""
    threads, per_thread, hold_s = 4, 5, 2 * BUSY_MS / 1000
    errors: list[StoreError] = []

    def work() -> None:
        for _ in range(per_thread):
            try:
                with db.session() as s:
                    s.execute(text("UPDATE t SET v = v + 1 WHERE k = 1"))
                    time.sleep(hold_s)
            except StoreError as exc:
                errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers)
    assert errors == []
    with db.session() as s:
        assert s.execute(text("SELECT v FROM t WHERE k = 1")).scalar_one() == threads * per_thread
