"""Which VMs ``corral backup run`` finds due, on an inventory synced from libvirt's test driver
(its backup API is not there: taking the backups is tested on the real hosts), and the
verify/gc commands' answers and exit codes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.engines.backup import Policy, parse_policy
from corral.inventory.service import Inventory
from corral.services.backup_exec import Executor, HostOpener
from corral.store.backup_repo import Repository
from tests.backup.points import T0, make_point

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)


@pytest.fixture
def synced(inventory: Inventory) -> Inventory:
    inventory.add_host("h1", "test:///default")  # one running VM named "test"
    inventory.sync()
    return inventory


def _vm_uuid(inv: Inventory) -> str:
    return str(inv.find_vm("test").uuid)


def _due(inv: Inventory, repo: Repository, policy: Policy, hours_later: float) -> list[str]:
    at = T0 + timedelta(hours=hours_later)
    executor = Executor(inv.db, repo, policy, HostOpener(inv.db), now=lambda: at)
    return [t.name for t in executor._due()]


def test_a_vm_is_due_without_a_point_and_again_once_its_rpo_has_passed(
    synced: Inventory, tmp_path: Path
) -> None:
    repo = Repository(tmp_path)
    assert _due(synced, repo, Policy(), 0) == ["test"]  # never backed up
    make_point(repo, 0, None, synced.db, vm=_vm_uuid(synced))  # taken at T0
    assert _due(synced, repo, Policy(), 3.9) == []  # restart tier: RPO 4 h
    assert _due(synced, repo, Policy(), 4) == ["test"]
    hourly = parse_policy({"vms": {"test": {"rpo": "1h"}}}, "test policy")
    assert _due(synced, repo, hourly, 1) == ["test"]


def test_a_vm_rebuilt_from_its_template_is_never_due(synced: Inventory, tmp_path: Path) -> None:
    policy = parse_policy({"vms": {"test": {"tier": "none"}}}, "test policy")
    assert _due(synced, Repository(tmp_path), policy, 0) == []


def test_verify_exits_1_on_a_damaged_point_and_gc_dry_run_deletes_nothing(
    synced: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.cli import context
    from corral.cli.main import app

    repo = Repository(tmp_path / "repo")
    a = make_point(repo, 1, None, synced.db)
    b = make_point(repo, 2, None, synced.db)
    c = make_point(repo, 3, None, synced.db)
    monkeypatch.setenv("CORRAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CORRAL_BACKUP_REPOSITORY", str(repo.root))
    monkeypatch.setenv("CORRAL_DATABASE_URL", synced.db.engine.url.render_as_string(False))
    context.settings.cache_clear()
    context.inventory.cache_clear()
    runner = CliRunner()

    ok = runner.invoke(app, ["backup", "verify", "-o", "json"])
    assert ok.exit_code == 0, ok.output
    (repo.folder(b.id) / "vda.qcow2").write_bytes(b"not what was hashed")
    bad = runner.invoke(app, ["backup", "verify", "-o", "json"])
    assert bad.exit_code == 1 and b.id in bad.stdout and "vda.qcow2" in bad.stdout
    gc = runner.invoke(app, ["backup", "gc", "--dry-run", "-o", "json"])
    assert gc.exit_code == 0, gc.output
    assert json.loads(gc.stdout)["removed"] == [a.id]  # restart keeps the last 2 (b, c)
    assert [p.id for p in repo.points()] == [a.id, b.id, c.id]
    context.settings.cache_clear()
    context.inventory.cache_clear()


def test_a_shut_off_vm_is_due_too(inventory: Inventory, tmp_path: Path) -> None:
    """Its disks are read offline (the backup API needs a running domain): the RPO holds."""
    import shutil

    nodes = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"
    shutil.copy(nodes / "host-a.xml", tmp_path / "host-a.xml")
    inventory.add_host("a", f"test://{tmp_path / 'host-a.xml'}")
    inventory.sync()
    assert inventory.find_vm("old-build").state == "shutoff"
    due = _due(inventory, Repository(tmp_path / "repo"), Policy(), 0)
    assert "old-build" in due and "web-01" in due


def test_a_failed_backup_says_one_sentence_without_libvirts_own_stderr_lines(
    synced: Inventory, tmp_path: Path
) -> None:
    """libvirt prints each error on stderr by itself unless told not to; the CLI's user gets
    Corral's sentence only (the test driver has no backup API)."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": synced.db.engine.url.render_as_string(False),
        "CORRAL_BACKUP_REPOSITORY": str(tmp_path / "repo"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "corral", "backup", "run", "--vm", "test", "-o", "json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    [outcome] = json.loads(done.stdout)
    assert outcome["status"] == "failed" and outcome["detail"], outcome
    assert "libvirt:" not in done.stderr, done.stderr
