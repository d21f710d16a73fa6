"""Issue 15 item 5: each kind of failure has its own exit status, through the real CLI.

0 success, 1 a bug or a failure Corral cannot name (the database), 2 bad input, 3 not found,
4 conflict, 5 an unreachable host (``sync`` still syncs the hosts that answered). Every
failure is one sentence on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.freshdb import migrated_home


def _corral(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CORRAL_HOME": str(home),
        "CORRAL_NODE_DIR": str(home.parent),
        "CORRAL_HOST_TIMEOUT": "10",
    }
    for name in ("CORRAL_DATABASE_URL", "CORRAL_DEBUG"):
        env.pop(name, None)
    command = [sys.executable, "-m", "corral", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def _one_sentence(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture
def home(tmp_path: Path, nodes: Path) -> Path:
    """A home with host-a registered (its node file sits beside the home, in the node folder)."""
    home = migrated_home(tmp_path / "home")
    assert _corral(home, "hosts", "add", "host-a", f"test://{nodes / 'host-a.xml'}").returncode == 0
    return home


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["hosts", "add", "x", "qemu+ext:///system?command=/bin/true"], 2, "unsupported"),
        (["hosts", "add", "x", "test:///etc/hostname"], 2, "must be inside"),
        (["vms", "--sort", "password"], 2, "cannot sort by"),
        (["vm", "show", "no-such-vm"], 3, "no VM named"),
        (["hosts", "remove", "ghost"], 3, "no host named"),
        (["sync", "--host", "ghost"], 3, "no host named"),
        (["hosts", "add", "host-a", "test:///default"], 4, "already exists"),
    ],
)
def test_exit_code_per_kind_of_error(home: Path, args: list[str], code: int, words: str) -> None:
    proc = _corral(home, *args)
    assert proc.returncode == code
    assert words in _one_sentence(proc)


def test_usage_error_exits_2(home: Path) -> None:
    proc = _corral(home, "vms", "--no-such-option")
    assert proc.returncode == 2 and "No such option" in proc.stderr


def test_same_uri_twice_exits_4(home: Path, nodes: Path) -> None:
    proc = _corral(home, "hosts", "add", "again", f"test://{nodes / 'host-a.xml'}")
    assert proc.returncode == 4
    assert "host 'host-a' is already registered" in _one_sentence(proc)


def test_sync_exits_5_naming_the_host_after_syncing_the_others(home: Path) -> None:
    down = _corral(home, "hosts", "add", "down", "qemu+tcp://127.0.0.1:1/system")
    assert down.returncode == 0  # registered; it answers some other day
    proc = _corral(home, "sync", "-o", "json")
    assert proc.returncode == 5
    line = _one_sentence(proc)
    assert "host down was not synced: the connection failed." in line and "host-a" not in line
    report = {h["host"]: h["status"] for h in json.loads(proc.stdout)["hosts"]}
    assert report == {"host-a": "ok", "down": "unreachable"}
    names = {v["name"] for v in json.loads(_corral(home, "vms", "-o", "json").stdout)}
    assert names == {"web-01", "db-01", "old-build"}


def test_database_failure_exits_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "corral.db").write_bytes(b"this is not an SQLite database" * 100)
    proc = _corral(home, "hosts", "list")
    assert proc.returncode == 1
    assert "not a database" in _one_sentence(proc)


def test_unexpected_error_exits_1_without_traceback(tmp_path: Path) -> None:
    home = tmp_path / "home-is-a-file"
    home.write_text("")
    proc = _corral(home, "hosts", "list")
    assert proc.returncode == 1
    assert "unexpected" in _one_sentence(proc)


def test_success_exits_0(home: Path) -> None:
    proc = _corral(home, "sync")
    assert proc.returncode == 0 and proc.stderr == ""
