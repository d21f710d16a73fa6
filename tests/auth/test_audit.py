"""Issue 10 item 9: every write in an append-only, hash-chained log; tampering is found.

On SQLite and PostgreSQL (the ``db`` fixture): an intact log verifies; an entry changed,
removed or inserted directly in the database is named by ``verify`` and by ``corral audit
verify`` (a real process, exit status non-zero); concurrent writers on PostgreSQL keep one chain.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from corral.services.audit import Actor, AuditLog, acting_as
from corral.services.users import UserService
from corral.store.db import Database
from tests.auth.conftest import VM_OWN, World
from tests.freshdb import migrated_home

ALICE = Actor("alice", "admin", "cli:alice")


def _writes(db: Database, n: int) -> None:
    users = UserService(db)
    with acting_as(ALICE):
        for i in range(n):
            users.add(f"user-{i}", roles=["requester"], departments=["red"])
            users.disable(f"user-{i}")


def test_each_write_is_one_entry_with_who_what_before_after(db: Database) -> None:
    _writes(db, 1)
    rows = AuditLog(db).list()
    assert [(r.action, r.target) for r in rows] == [
        ("create", "user:user-0"),
        ("create", "user-role:1"),
        ("create", "user-department:1"),
        ("update", "user:user-0"),
    ]
    first, last = rows[0], rows[-1]
    assert (first.actor, first.roles, first.origin) == ("alice", "admin", "cli:alice")
    assert first.after is not None and first.after["name"] == "user-0"
    assert last.before == {"disabled_at": None} and last.after is not None
    assert last.after["disabled_at"] is not None
    assert AuditLog(db).verify().intact


def test_writes_without_an_actor_are_not_recorded(db: Database) -> None:
    UserService(db).add("system-made")
    assert AuditLog(db).list() == []


def test_api_writes_record_the_user_role_and_ip(world: World) -> None:
    r = world.client.patch(
        f"/api/v1/vms/{VM_OWN}/metadata",
        json={"purpose": "audit me"},
        headers=world.auth("requester"),
    )
    assert r.status_code == 200, r.text
    entries = world.client.get(
        "/api/v1/audit", params={"target": f"vm:{VM_OWN}"}, headers=world.auth("auditor")
    ).json()["items"]
    assert len(entries) == 1
    e = entries[0]
    assert (e["actor"], e["roles"], e["action"]) == ("requester-1", "requester", "update")
    assert e["origin"].startswith("api testclient PATCH /api/v1/vms/")
    assert e["after"] == {"purpose": "audit me"}
    # a read is no write: nothing more was recorded
    world.client.get(f"/api/v1/vms/{VM_OWN}", headers=world.auth("requester"))
    again = world.client.get("/api/v1/audit", headers=world.auth("admin")).json()["items"]
    assert [x["seq"] for x in again] == [e["seq"]]


TAMPERING = {
    "changed": 'UPDATE audit_log SET after = \'{"name": "mallory"}\' WHERE seq = 3',
    "removed": "DELETE FROM audit_log WHERE seq = 3",
    "inserted": (
        "INSERT INTO audit_log (seq, at, actor, roles, origin, action, target, prev_hash, hash)"
        " SELECT 9, at, 'mallory', 'admin', 'cli:mallory', 'create', 'user:mallory', hash,"
        " hash FROM audit_log WHERE seq = 8"
    ),
    "removed-last": "DELETE FROM audit_log WHERE seq = 8",
}
FIRST_BAD = {"changed": 3, "removed": 3, "inserted": 9, "removed-last": 8}


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_tampering_is_found_and_the_first_bad_entry_named(db: Database, kind: str) -> None:
    _writes(db, 2)  # 8 entries
    log = AuditLog(db)
    assert log.verify().intact and log.verify().entries == 8
    with db.engine.begin() as conn:
        conn.execute(text(TAMPERING[kind]))
    verdict = log.verify()
    assert not verdict.intact
    assert verdict.first_bad == FIRST_BAD[kind], verdict


def test_corral_audit_verify_exits_non_zero_naming_the_entry(tmp_path: Path) -> None:
    env = {**os.environ, "CORRAL_HOME": str(migrated_home(tmp_path / "home"))}
    env.pop("CORRAL_DATABASE_URL", None)

    def corral(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "corral", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert corral("user", "add", "erin", "--role", "approver", "-d", "red").returncode == 0
    listed = corral("audit", "list", "--user", os.environ.get("USER", ""), "-o", "json")
    assert listed.returncode == 0
    ok = corral("audit", "verify")
    assert ok.returncode == 0 and "intact: 3 entries" in ok.stdout, ok.stdout + ok.stderr
    db = Database(f"sqlite:///{tmp_path / 'home' / 'corral.db'}")
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2"))
    db.dispose()
    bad = corral("audit", "verify")
    assert bad.returncode != 0 and "entry 2" in bad.stderr, bad.stderr


@pytest.mark.requires("postgresql")
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_concurrent_writers_never_fork_the_chain(db: Database) -> None:
    """Eight threads, each with its own connection, write at once: one unbroken chain."""
    writers, each = 8, 10
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(w: int) -> None:
        users = UserService(db)
        start.wait()
        try:
            with acting_as(Actor(f"writer-{w}", "admin", "test")):
                for i in range(each):
                    users.add(f"w{w}-u{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    verdict = AuditLog(db).verify()
    assert verdict.intact and verdict.entries == writers * each, verdict
    actors = {r.actor for r in AuditLog(db).list(limit=1000)}
    assert actors == {f"writer-{w}" for w in range(writers)}
