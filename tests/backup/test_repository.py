"""The restore point repository on a real directory, and its catalog in the real database:
sealed points only, verification that notices damage, and garbage collection that follows
retention without breaking a retained chain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from corral.engines.backup import Policy
from corral.engines.backup.policy import Retention, TierPolicy
from corral.services.audit import Actor, acting_as
from corral.services.backup_exec import gc, verify
from corral.store import models as m
from corral.store.backup_repo import Repository
from corral.store.db import Database
from tests.backup.points import VM
from tests.backup.points import make_point as _point


def test_a_point_counts_only_once_sealed(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    unfinished = repo.begin(VM, "20260302T000000-aaaaaa")
    (unfinished / "vda.qcow2").write_bytes(b"half")
    assert repo.points() == [] and repo.leftovers(VM) == [unfinished]
    sealed = _point(repo, 1, None)
    assert [p.id for p in repo.points()] == [sealed.id]
    assert repo.get(sealed.id) == sealed  # the manifest reads back as written
    assert oct((tmp_path / VM / sealed.id).stat().st_mode & 0o777) == "0o700"


def test_a_writer_killed_before_the_seal_leaves_no_point(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from corral.store.backup_repo import Repository
        folder = Repository(Path({str(tmp_path)!r})).begin({VM!r}, "20260302T000000-killed")
        with open(folder / "vda.qcow2", "wb") as out:
            while True:
                out.write(b"x" * 65536)
                out.flush()
                time.sleep(0.01)
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script], env=os.environ)
    folder = tmp_path / VM / ".partial-20260302T000000-killed" / "vda.qcow2"
    deadline = time.monotonic() + 60
    while not (folder.exists() and folder.stat().st_size > 0):
        assert writer.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    repo = Repository(tmp_path)
    assert repo.points() == []
    assert [p.name for p in repo.leftovers(VM)] == [".partial-20260302T000000-killed"]


def test_verify_notices_a_changed_byte_a_missing_file_and_a_lost_parent(
    db: Database, tmp_path: Path
) -> None:
    repo = Repository(tmp_path)
    full = _point(repo, 1, None, db)
    inc = _point(repo, 2, full.id, db)
    assert [r.ok for r in verify(db, repo)] == [True, True]

    disk = repo.folder(inc.id) / "vda.qcow2"
    data = bytearray(disk.read_bytes())
    data[100] ^= 0xFF
    disk.write_bytes(bytes(data))
    (repo.folder(full.id) / "domain.xml").unlink()
    results = {r.point: r.problems for r in verify(db, repo)}
    assert results == {
        full.id: ("domain.xml is missing",),
        inc.id: ("vda.qcow2 does not match its sha256",),
    }
    with db.session() as s:
        assert {r.id: r.verify_ok for r in s.query(m.BackupPointRow)} == {
            full.id: False, inc.id: False
        }  # fmt: skip
    repo.remove(full.id)
    assert "its parent" in " ".join(repo.verify(inc.id).problems)


def test_gc_follows_retention_and_keeps_every_parent_of_a_kept_point(
    db: Database, tmp_path: Path
) -> None:
    repo = Repository(tmp_path)
    a = _point(repo, 1, None, db)
    b = _point(repo, 2, a.id, db)
    c = _point(repo, 3, None, db)
    d = _point(repo, 4, c.id, db)
    e = _point(repo, 5, d.id, db)
    policy = Policy(tiers={"restart": TierPolicy(retention=Retention(keep_last=1))})

    planned = gc(db, repo, policy, dry_run=True)
    assert planned.removed == (b.id, a.id) and [p.id for p in repo.points()] == [
        a.id, b.id, c.id, d.id, e.id
    ]  # fmt: skip
    with acting_as(Actor(user="ops", roles="operator", origin="test")):
        done = gc(db, repo, policy)

    assert done.kept == {e.id: "keep-last", d.id: f"parent of {e.id}", c.id: f"parent of {d.id}"}
    assert [p.id for p in repo.points()] == [c.id, d.id, e.id]
    assert repo.chain(e.id) == [c, d, e]
    assert all(r.ok for r in verify(db, repo))
    with db.session() as s:
        assert sorted(r.id for r in s.query(m.BackupPointRow)) == [c.id, d.id, e.id]
        deleted = s.query(m.AuditEntry.target).filter(m.AuditEntry.action == "delete").all()
        assert sorted(t for (t,) in deleted) == [f"restore-point:{a.id}", f"restore-point:{b.id}"]
    assert not any((tmp_path / VM).glob(".deleting-*"))


def test_a_point_id_cannot_leave_the_repository(tmp_path: Path) -> None:
    from corral.errors import ValidationError

    with pytest.raises(ValidationError):
        Repository(tmp_path).get("../../etc")
