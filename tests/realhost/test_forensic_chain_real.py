"""Forensic snapshots keep a VM's backing chain bounded; evidence retention and legal hold.

On a real libvirtd host, a guest whose disk is a linked clone (an overlay on a base image:
a backing chain of two) and which runs a real guest agent with ext4 mounted at /data gets
three forensic snapshots, with known data written through the agent before each. After every
one the live chain is two deep again (libvirt's own XML and ``qemu-img info --backing-chain``),
on the same top file, with no overlay left; the guest's data is intact byte for byte (its
filesystem frozen by the agent, then read from the disk file on the host: clean, every known
file there) and every evidence set still matches its recorded hashes.

Retention: evidence past ``retention_days`` is deleted by ``expire`` with a custody record in
the (hash-chained) audit log, except evidence on legal hold, which the run names as refused
and deletes only once released.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import test_forensic_real as shared
from guest import (
    AGENT_READY_MARKER,
    GuestFactory,
    agent_write_file,
    make_ext4_disk,
    wait_for_agent,
    wait_for_console,
)

from corral.errors import ConflictError, NotFoundError
from corral.hypervisor.forensic import chain_depths
from corral.inventory.service import Inventory
from corral.services.audit import AuditLog, acting_as
from corral.services.forensic import ForensicService

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)

real_inventory = shared.real_inventory
service = shared.service
TESTER = shared.TESTER


def _linked_clone(workdir: Path) -> tuple[Path, Path]:
    """(base, top): an ext4 base image and a qcow2 overlay on it, the guest's disk."""
    tag = uuid.uuid4().hex[:8]
    base = make_ext4_disk(workdir / f"fxc-base-{tag}.qcow2", 32)
    top = workdir / f"fxc-top-{tag}.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(top)],
        check=True,
    )
    return base, top


def _chain_files(top: Path) -> list[str]:
    done = subprocess.run(
        ["qemu-img", "info", "-U", "--backing-chain", str(top)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
            if line.startswith("image:")]  # fmt: skip


def _live_top(dom: Any) -> str:
    return shared._live_disk(dom)


def _read_back(top: Path, tmp_path: Path, names: list[str]) -> tuple[int, dict[str, bytes]]:
    """e2fsck's exit code and the named files, from the disk as the host sees it now."""
    raw = tmp_path / "now.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(top), str(raw)], check=True)
    check = subprocess.run(["e2fsck", "-fn", str(raw)], capture_output=True, check=False)
    files = {}
    for name in names:
        out = tmp_path / f"read-{name}"
        subprocess.run(["debugfs", "-R", f"dump /{name} {out}", str(raw)], check=True,
                       capture_output=True)  # fmt: skip
        files[name] = out.read_bytes()
    return check.returncode, files


@pytest.mark.timeout(900)  # one TCG boot, minutes when the shared machine is loaded
def test_snapshots_keep_the_chain_bounded_and_the_data_intact(
    real_inventory: Inventory, guest_factory: GuestFactory, service: ForensicService,
    tmp_path: Path,
) -> None:  # fmt: skip
    base, top = _linked_clone(guest_factory.workdir)
    guest = guest_factory(0, disk=top, agent=True)
    wait_for_console(guest.console_log, AGENT_READY_MARKER, timeout_s=400)
    wait_for_agent(guest.dom)
    real_inventory.sync()
    assert chain_depths(guest.dom.XMLDesc(0)) == {"vda": 2}
    assert _chain_files(top) == [str(top), str(base)]

    known: dict[str, bytes] = {}
    taken = []
    for i in range(3):
        known[f"known{i}"] = os.urandom(48 * 1024)
        agent_write_file(guest.dom, f"/data/known{i}", known[f"known{i}"])
        with acting_as(TESTER):
            taken.append(service.snapshot(guest.name, by="alice", reason=f"IDS alert {i}"))
        # bounded: the same top file, the same two-image chain, no overlay left behind
        assert _live_top(guest.dom) == str(top)
        assert chain_depths(guest.dom.XMLDesc(0)) == {"vda": 2}, i
        assert _chain_files(top) == [str(top), str(base)]
        assert not list(top.parent.glob(f".{top.name}.*")), "an overlay was left behind"

    guest.dom.fsFreeze()  # a clean filesystem to read from the host
    try:
        code, files = _read_back(top, tmp_path, sorted(known))
    finally:
        guest.dom.fsThaw()
    assert code == 0, "the guest's filesystem is not clean after the snapshots"
    assert files == known  # every write, before and between the snapshots, byte for byte
    assert [c.ok for c in service.verify()] == [True, True, True]  # hashes still match
    for evidence in taken:
        copy = service.store.folder(evidence.id) / "vda.qcow2"
        assert shared._sha256(copy) == {f.name: f for f in evidence.files}["vda.qcow2"].sha256


def test_expiry_deletes_old_evidence_with_a_record_and_spares_a_hold(
    real_inventory: Inventory, guest_factory: GuestFactory, service: ForensicService,
) -> None:  # fmt: skip
    guest = guest_factory(0, disk=shared._disk(guest_factory.workdir), wait_ready=True)
    real_inventory.sync()
    with acting_as(TESTER):
        kept = service.snapshot(guest.name, by="alice", reason="case 7")
        old = service.snapshot(guest.name, by="alice", reason="routine")
        service.hold(kept.id, by="counsel", reason="legal hold: case 7")
    with pytest.raises(ConflictError):
        service.hold(kept.id, by="counsel", reason="twice")
    service.retention_days = 30

    assert service.expire(by="cron").deleted == ()  # nothing is 30 days old yet
    start = service.now()
    service.now = lambda: start + timedelta(days=31)
    with acting_as(TESTER):
        run = service.expire(by="cron")

    assert (run.deleted, run.held) == ((old.id,), (kept.id,))
    assert not service.store.folder(old.id).exists()
    assert service.store.folder(kept.id).is_dir()
    assert [e.id for e in service.evidence()] == [kept.id]
    with pytest.raises(NotFoundError, match="retention ended"):
        service.show(old.id)
    audit = AuditLog(real_inventory.db)
    records = audit.list(target="forensic:", limit=1000)
    [gone] = [e for e in records if (e.after or {}).get("kind") == "expired"]
    assert gone.after is not None and gone.after["evidence_id"] == old.id
    assert {f["name"]: f["sha256"] for f in gone.after["files"]} == {
        f.name: f.sha256 for f in old.files
    }  # the custody record of the deletion names what was deleted, with its hashes
    assert audit.verify().intact

    with acting_as(TESTER):
        service.release(kept.id, by="counsel", reason="case 7 closed")
        again = service.expire(by="cron")
    assert (again.deleted, again.held) == ((kept.id,), ())
    assert service.evidence() == []
    assert not service.store.folder(kept.id).exists()
