"""The backup loop on a moved clock: each round takes the due backups, then expires the restore
points no retention rule keeps and the evidence past its days, never one on hold (a held
incremental keeps its parent); every expiry is an event and an audit entry, and a backup that
fails (libvirt's test driver has no backup API) does not stop the expiry. Real PostgreSQL,
real qcow2 points, a real evidence store."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.engines.backup import Policy
from corral.engines.backup.policy import Retention, TierPolicy
from corral.errors import ConflictError, NotFoundError
from corral.inventory.service import Inventory
from corral.services import backup_holds
from corral.services.audit import Actor, AuditLog, acting_as
from corral.services.backup_exec import Executor, HostOpener
from corral.services.backup_loop import BackupLoop
from corral.store import models as m
from corral.store.backup_repo import Repository
from tests.backup.points import T0, make_point
from tests.forensic.support import forensic_service, taken

ON_POSTGRESQL = pytest.mark.parametrize("db", ["postgresql"], indirect=True)
KEEP_ONE = Policy(tiers={"restart": TierPolicy(retention=Retention(keep_last=1))})


class MovedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _loop(inv: Inventory, tmp_path: Path, clock: MovedClock) -> BackupLoop:
    repo = Repository(tmp_path / "repo")
    executor = Executor(inv.db, repo, KEEP_ONE, HostOpener.of(inv), now=clock)
    forensic = forensic_service(inv.db, tmp_path)
    forensic.now = clock
    return BackupLoop(executor, forensic, interval_s=60, by="backup-loop")


def _events(inv: Inventory) -> list[tuple[str, str]]:
    with inv.db.session() as s:
        rows = s.query(m.Event).filter(m.Event.kind.like("%-expired")).order_by(m.Event.id)
        return [(e.kind, e.details.get("point") or e.details["evidence"]) for e in rows]


@ON_POSTGRESQL
def test_rounds_expire_what_retention_lets_go_and_never_what_is_held(
    inventory: Inventory, tmp_path: Path
) -> None:
    inventory.add_host("h1", "test:///default")  # one running VM, "test": its backup fails
    inventory.sync()
    vm = str(inventory.find_vm("test").uuid)
    clock = MovedClock(T0 + timedelta(days=2))
    loop = _loop(inventory, tmp_path, clock)
    repo, db = loop.executor.repo, inventory.db
    a = make_point(repo, 1, None, db, vm=vm)
    b = make_point(repo, 2, a.id, db, vm=vm)
    old = taken(loop.forensic, "20260302T000000-aaaa", T0)
    kept = taken(loop.forensic, "20260302T000001-bbbb", T0)
    loop.forensic.hold(kept.id, by="counsel", reason="case 12")

    first = loop.round()  # two days on: nothing is past its retention
    assert first.leader and first.backups is not None and first.backups.failed == 1
    assert first.points is not None and first.points.removed == ()
    assert first.evidence is not None and first.evidence.deleted == ()
    assert "1 failed" in first.describe() and _events(inventory) == []

    c = make_point(repo, 3, None, db, vm=vm)
    d = make_point(repo, 4, c.id, db, vm=vm)
    with acting_as(Actor("counsel", "operator", "test")):
        backup_holds.hold(db, repo, b.id, by="counsel", reason="case 12", now=clock)
    with pytest.raises(ConflictError, match="on hold already"):
        backup_holds.hold(db, repo, b.id, by="counsel", reason="again")
    clock.at = T0 + timedelta(days=31)  # past the evidence's 30 days

    second = loop.round()
    assert second.points is not None and second.evidence is not None
    assert second.points.removed == () and second.points.held == (b.id,)
    assert second.points.kept[a.id] == f"parent of {b.id}"  # the held incremental's parent
    assert (second.evidence.deleted, second.evidence.held) == ((old.id,), (kept.id,))
    assert [p.id for p in repo.points(vm)] == [a.id, b.id, c.id, d.id]
    assert _events(inventory) == [("evidence-expired", old.id)]

    with acting_as(Actor("counsel", "operator", "test")):
        backup_holds.release(db, repo, b.id, by="counsel", reason="case 12 closed")
    third = loop.round()
    assert third.points is not None and third.points.removed == (b.id, a.id)
    assert [p.id for p in repo.points(vm)] == [c.id, d.id]
    assert third.evidence is not None and third.evidence.deleted == ()  # still held
    assert _events(inventory) == [
        ("evidence-expired", old.id), ("restore-point-expired", b.id),
        ("restore-point-expired", a.id),
    ]  # fmt: skip
    log = AuditLog(db)
    gone = [e.target for e in log.list(limit=10_000) if e.action == "delete"]
    assert f"restore-point:{a.id}" in gone and f"restore-point:{b.id}" in gone
    assert f"restore-point-hold:{b.id}" in gone  # the release, with its reason
    assert {e.actor for e in log.list(target=f"restore-point:{a.id}")} == {"backup-loop"}
    custody = [e for e in log.list(target="forensic:") if (e.after or {}).get("kind") == "expired"]
    assert [(e.after or {})["evidence_id"] for e in custody] == [old.id]
    assert log.verify().intact


@ON_POSTGRESQL
def test_a_second_loop_stands_by_while_one_leads(inventory: Inventory, tmp_path: Path) -> None:
    clock = MovedClock(T0)
    leader, other = _loop(inventory, tmp_path, clock), _loop(inventory, tmp_path, clock)
    assert leader.round().leader
    standing = other.round()
    assert not standing.leader and standing.describe().startswith("standing by")
    leader.run(cycles=1)  # run() lets the leadership go at its end
    assert other.round().leader
    assert other.lead is not None
    other.lead.release()


@ON_POSTGRESQL
def test_the_cli_holds_and_releases_a_point(
    inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.cli import context
    from corral.cli.main import app

    repo = Repository(tmp_path / "repo")
    point = make_point(repo, 1, None, inventory.db)
    monkeypatch.setenv("CORRAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CORRAL_DATABASE_URL", inventory.db.engine.url.render_as_string(False))
    monkeypatch.setenv("CORRAL_BACKUP_REPOSITORY", str(repo.root))
    context.settings.cache_clear()
    context.inventory.cache_clear()
    runner = CliRunner()
    held = runner.invoke(app, ["backup", "hold", point.id, "--reason", "case 4"])
    assert held.exit_code == 0 and "on hold" in held.output, held.output
    assert set(backup_holds.holds(inventory.db)) == {point.id}
    twice = runner.invoke(app, ["backup", "hold", point.id, "--reason", "case 4"])
    assert isinstance(twice.exception, ConflictError)  # the entry point prints its sentence
    missing = runner.invoke(app, ["backup", "release", "20260101T000000-000000", "--reason", "x"])
    assert isinstance(missing.exception, NotFoundError)
    done = runner.invoke(app, ["backup", "release", point.id, "--reason", "closed"])
    assert done.exit_code == 0, done.output
    assert backup_holds.holds(inventory.db) == {}
    context.settings.cache_clear()
    context.inventory.cache_clear()


def test_the_cli_loop_prints_one_line_per_round(tmp_path: Path) -> None:
    """``corral backup run --every`` keeps running: each round is one JSON line (here a home
    with no VM and evidence past its 30 days: the first round expires it)."""
    import json
    import os
    import subprocess
    import sys

    from corral.store.db import Database

    home = tmp_path / "home"
    home.mkdir()
    db = Database(f"sqlite:///{home / 'corral.db'}")
    db.migrate()
    service = forensic_service(db, home)  # evidence under $CORRAL_HOME/forensic
    old = taken(service, "20260302T000000-cccc", T0)
    db.dispose()
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_FORENSIC_RETENTION_DAYS": "30"}
    for key in ("CORRAL_DATABASE_URL", "CORRAL_FORENSIC_DIR", "CORRAL_BACKUP_REPOSITORY"):
        env.pop(key, None)
    loop = subprocess.Popen(
        [sys.executable, "-m", "corral", "backup", "run", "--every", "10", "-o", "json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert loop.stdout is not None
        first = json.loads(loop.stdout.readline())
        assert loop.poll() is None  # still running: it waits for the next round
    finally:
        loop.terminate()
        loop.wait(60)
    assert first["leader"] is True and first["errors"] == {}
    assert first["evidence"]["deleted"] == [old.id]
    assert first["backups"] == {"outcomes": []}
