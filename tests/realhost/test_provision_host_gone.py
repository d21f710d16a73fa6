"""Issue 10 item 5: the host's libvirtd dies half-way through a provisioning.

A private one-host set of scripts/realhosts.sh (its own state folder, so the shared hosts are
never touched) is started for this test; its libvirtd is SIGKILLed right after the disk was
made. The attempt must fail with the reason, and since rollback cannot reach a dead host, the
result must name exactly what stayed behind (the disk), and nothing else.
"""

from __future__ import annotations

import os
import signal
import time
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from cryptography.fernet import Fernet
from guest import RealhostEnv, create_volume, start_dir_pool
from privateset import private_set

from corral.domain.provision import ProvisionSpec, ProvisionStatus, Template
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services.provision import ProvisionService
from corral.store.db import Database


@pytest.fixture
def private_host(realhost_env: RealhostEnv) -> Iterator[tuple[str, Path]]:
    """(URI, libvirtd pid file) of a one-host set of our own, stopped and removed after."""
    with private_set(realhost_env, "prvh-", 1) as (state, uris):
        yield uris[0], state / "host1" / "libvirtd.pid"


def _kill(pid_file: Path) -> None:
    pid = int(pid_file.read_text().strip())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_libvirtd_killed_after_the_disk_names_the_disk_as_left_behind(
    private_host: tuple[str, Path], tmp_path: Path
) -> None:
    uri, pid_file = private_host
    db = Database(f"sqlite:///{tmp_path / 'corral.db'}")
    db.migrate()
    inventory = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess(timeout_s=30))
    inventory.add_host("gone1", uri)
    conn = libvirt.open(uri)
    pool = start_dir_pool(conn, f"prov-gone-{uuidlib.uuid4().hex[:6]}", tmp_path / "pool")
    create_volume(pool, "prov-base.qcow2", size_mib=16)
    service = ProvisionService(inventory)
    service.templates.add(Template(name="t", pool=pool.name(), volume="prov-base.qcow2",
                                   domain_type="qemu", memory_mib=128))  # fmt: skip
    name = f"prov-{uuidlib.uuid4().hex[:8]}"
    steps: list[str] = []

    def host_dies_after_the_disk(step: str) -> None:
        steps.append(step)
        if step == "disk":
            _kill(pid_file)

    spec = ProvisionSpec(name=name, template="t", host="gone1", owner="alice",
                         department="red", created_by="t", start=False)  # fmt: skip
    result = service.provision(spec, on_step=host_dies_after_the_disk)
    assert steps == ["disk"]
    assert result.status is ProvisionStatus.failed
    # The next call meets the dead connection ("stopped answering") or, when the pool had let
    # it go, a reconnect that is refused ("the connection failed"): either says unreachable.
    reason = result.reason or ""
    assert "stopped answering" in reason or "connection failed" in reason, reason
    assert result.rolled_back == ()
    assert result.leftovers == (f"volume {pool.name()}/{name}.qcow2",)
    assert (tmp_path / "pool" / f"{name}.qcow2").exists()  # really there: the report is true
    assert not (tmp_path / "pool" / f"{name}-cidata.iso").exists()
    assert service.history()[0].leftovers == result.leftovers
    inventory.close()
    db.dispose()
