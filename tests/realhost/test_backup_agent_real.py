"""Application-consistent backups through a real QEMU guest agent, on the real libvirtd hosts.

The guest is the guest-agent variant of the test guest (scripts/realhosts.sh builds
initrd-agent.img): Debian's qemu-ga runs on its virtio-serial channel, the ext4 filesystem on its
virtio disk is mounted at /data and a writer keeps appending to /data/churn. Known data is
written into /data through the agent itself. The executor's backup must then say
"application" because the agent froze that filesystem (its own log shows freeze, then thaw);
the restore point's filesystem is clean (``e2fsck -fn``: nothing to replay, nothing to fix) and
holds the known data byte for byte; the restored VM boots, mounts it and reads the data back
through its own agent. A backup whose start fails still thaws the guest.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import test_backup_repository_real as shared
from guest import (
    AGENT_READY_MARKER,
    Guest,
    GuestFactory,
    agent_command,
    agent_read_file,
    agent_write_file,
    wait_for_agent,
    wait_for_console,
)

from corral.engines.backup import Policy
from corral.errors import HypervisorError
from corral.hypervisor.backup import full_backup
from corral.hypervisor.restore import file_consoles
from corral.inventory.service import Inventory
from corral.services.backup_exec import Executor, HostOpener
from corral.services.restore import Restorer
from corral.store.backup_repo import Repository

real_inventory = shared.real_inventory  # the fixture: two real hosts in a fresh inventory
restored = shared.restored  # removes the restored copies afterwards
AGENT_LOG = "/run/qga/qga.log"
KNOWN = "/data/known"


def _agent_guest(factory: GuestFactory) -> Guest:
    guest = factory(0, disk_mib=32, agent=True)
    wait_for_console(guest.console_log, AGENT_READY_MARKER, timeout_s=400)
    wait_for_agent(guest.dom)
    return guest


def _agent_verbs(dom: Any) -> list[str]:
    """The freeze and thaw commands the guest's agent logged, in order. qemu-ga stops logging
    while the guest is frozen (its log could be on a frozen filesystem), so a thaw is never in
    it: that the guest is thawed shows in guest-fsfreeze-status and in a write that works."""
    log = agent_read_file(dom, AGENT_LOG).decode(errors="replace")
    verbs = []
    for line in log.splitlines():
        for verb in ("guest-fsfreeze-freeze", "guest-fsfreeze-thaw"):
            if f'"execute":"{verb}"' in line:
                verbs.append(verb.removeprefix("guest-fsfreeze-"))
    return verbs


def _raw(image: Path, out: Path) -> Path:
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(image), str(out)], check=True)
    return out


def _fsck(raw: Path) -> subprocess.CompletedProcess[str]:
    """``e2fsck -fn``: a full check that changes nothing; 0 only when the filesystem is clean."""
    return subprocess.run(
        ["e2fsck", "-fn", str(raw)], capture_output=True, text=True, timeout=120, check=False
    )


def _file_in(raw: Path, inside: str, out: Path) -> bytes:
    subprocess.run(
        ["debugfs", "-R", f"dump {inside} {out}", str(raw)], check=True, capture_output=True
    )
    return out.read_bytes()


@pytest.mark.timeout(1200)  # two TCG boots: minutes each when the shared machine is loaded
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_an_application_consistent_backup_freezes_through_the_real_agent(
    real_inventory: Inventory,
    guest_factory: GuestFactory,
    restored: list[tuple[str, Path]],
    tmp_path: Path,
) -> None:
    guest = _agent_guest(guest_factory)
    known = os.urandom(64 * 1024)
    agent_write_file(guest.dom, KNOWN, known)
    real_inventory.sync()
    repo = Repository(tmp_path / "repo")
    executor = Executor(real_inventory.db, repo, Policy(), HostOpener.of(real_inventory))

    [outcome] = executor.run(guest.name).outcomes

    assert (outcome.status, outcome.kind) == ("done", "full"), outcome
    assert outcome.consistency == "application", outcome.consistency_note
    assert outcome.consistency_note == "guest agent froze 1 filesystem(s)"
    assert _agent_verbs(guest.dom) == ["freeze"]  # the agent's own account
    assert agent_command(guest.dom, "guest-fsfreeze-status") == "thawed"
    assert agent_read_file(guest.dom, KNOWN) == known  # the guest writes on after the thaw

    name = f"bkag-{uuid.uuid4().hex[:6]}"
    restorer = Restorer(real_inventory.db, repo, HostOpener.of(real_inventory))
    done = restorer.restore(str(outcome.point), as_name=name, disk_dir=tmp_path, start=False)
    restored.append((name, Path(done.disks[0])))
    raw = _raw(Path(done.disks[0]), tmp_path / "restored.raw")
    check = _fsck(raw)
    assert check.returncode == 0, check.stdout + check.stderr  # clean: no journal to replay
    assert _file_in(raw, "/known", tmp_path / "known") == known
    assert _file_in(raw, "/churn", tmp_path / "churn").startswith(b"line 1\n")

    # and the restored VM boots, mounts it (its /agent-init says so) and reads the data back
    copy = guest.dom.connect().lookupByName(name)
    copy.create()
    [console] = file_consoles(copy.XMLDesc(0))
    wait_for_console(console, AGENT_READY_MARKER, timeout_s=400)
    assert "corral-agent: mounted /dev/vda on /data" in console.read_text(errors="replace")
    wait_for_agent(copy)
    assert agent_read_file(copy, KNOWN) == known


@pytest.mark.timeout(900)  # one TCG boot, minutes when the shared machine is loaded
def test_a_failed_backup_start_still_thaws_the_guest(
    guest_factory: GuestFactory, tmp_path: Path
) -> None:
    guest = _agent_guest(guest_factory)
    nowhere = tmp_path / "no-such-folder" / "vda.qcow2"  # libvirt cannot create the target

    with pytest.raises(HypervisorError, match="refused the backup"):
        full_backup(guest.dom, [("vda", nowhere)], f"ck-{uuid.uuid4().hex[:6]}", quiesce=True)

    assert _agent_verbs(guest.dom) == ["freeze"]  # it was frozen, and then thawed:
    assert agent_command(guest.dom, "guest-fsfreeze-status") == "thawed"
    agent_write_file(guest.dom, "/data/after", b"writable again")
    assert agent_read_file(guest.dom, "/data/after") == b"writable again"
