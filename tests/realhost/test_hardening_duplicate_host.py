"""Issue 9 item 8(c): one libvirt host under two URI spellings is one host.

Registering it again (another spelling of the same URI, or another path to the same socket) is
refused with a conflict naming the host already registered; a pair registered before that check
existed is recognised by libvirt's host UUID at sync time, and its VMs never "migrate" between
the two names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from guest import GuestFactory

from corral.errors import ConflictError
from corral.inventory.service import Inventory
from corral.store import models as m


def _socket(uri: str) -> Path:
    return Path(uri.split("socket=", 1)[1])


def _via_symlink(uri: str, tmp_path: Path) -> str:
    """Another path to the same daemon socket: a symlinked folder."""
    link = tmp_path / "other-spelling"
    link.symlink_to(_socket(uri).parent)
    return f"qemu+unix:///system?socket={link / _socket(uri).name}"


def test_second_registration_of_one_host_is_refused(
    inventory: Inventory, realhost_uris: list[str], tmp_path: Path
) -> None:
    uri = realhost_uris[0]
    inventory.add_host("real-1", uri)
    with pytest.raises(ConflictError, match="host 'real-1' is already registered"):
        inventory.add_host("again", f"{uri}&")
    with pytest.raises(ConflictError, match="reaches host 'real-1'"):
        inventory.add_host("again", _via_symlink(uri, tmp_path))
    assert inventory.add_host("real-2", realhost_uris[1]).last_error is None
    assert [h.name for h in inventory.list_hosts()] == ["real-1", "real-2"]


def test_cli_exits_4_for_a_host_registered_twice(realhost_uris: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "CORRAL_HOME": str(tmp_path / "home")}
    env.pop("CORRAL_DATABASE_URL", None)

    def add(name: str, uri: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "corral", "hosts", "add", name, uri]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    assert add("real-1", realhost_uris[0]).returncode == 0
    again = add("again", _via_symlink(realhost_uris[0], tmp_path))
    assert again.returncode == 4 and "real-1" in again.stderr


def test_a_pair_registered_before_the_check_records_no_false_migrations(
    inventory: Inventory,
    realhost_uris: list[str],
    guest_factory: GuestFactory,
    tmp_path: Path,
) -> None:
    guest = guest_factory(0)
    inventory.add_host("real-1", realhost_uris[0])
    with inventory.db.session() as s:  # as an older Corral let it in
        s.add(
            m.Host(
                name="real-1-again",
                uri=_via_symlink(realhost_uris[0], tmp_path),
                created_at=inventory.clock(),
            )
        )
    reports = [inventory.sync() for _ in range(3)]
    assert all(r.count_of("migrated") == 0 for r in reports)
    status = {h.host: (h.status, h.error) for h in reports[-1].hosts}
    assert status["real-1"] == ("ok", None)
    assert status["real-1-again"][0] == "duplicate"
    assert "the same libvirt host as 'real-1'" in (status["real-1-again"][1] or "")
    vm = inventory.find_vm(guest.uuid)
    assert vm.host == "real-1"
    assert [e.kind for e in vm.history] == ["created"]
