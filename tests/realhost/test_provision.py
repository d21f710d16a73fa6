"""Issue 10 item 5 on real libvirtd hosts: a VM made from a template boots and reads its seed.

The template is a small qcow2 base volume in a transient pool on host 1 plus direct kernel
boot (the hosts' guests have no bootloader); Corral makes the linked clone and the cloud-init
seed through libvirt's storage API, defines and starts the domain, and the guest proves on its
serial console that it found the ``cidata`` disk, took its hostname from meta-data and ran
the user-data script (see seedguest.py for exactly what that proves). Failures are injected
for real: a network the host does not have (start fails after define) and an architecture
the host cannot emulate (define fails after the volumes were made); each must leave no
domain and no volume behind.
"""

from __future__ import annotations

import shutil
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from guest import RealhostEnv, create_volume
from seedguest import read_console, seed_reading_initrd

from corral.domain.provision import CloudInit, DiskMode, ProvisionSpec, ProvisionStatus, Template
from corral.hypervisor.domxml import parse_metadata
from corral.hypervisor.uri import HostAccess
from corral.hypervisor.xmlsafe import parse
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services.provision import ProvisionService
from corral.services.templates import TemplateService
from corral.store.db import Database

HOST = "real1"


@pytest.fixture
def service(realhost_uris: list[str], tmp_path: Path) -> Iterator[ProvisionService]:
    db = Database(f"sqlite:///{tmp_path / 'corral.db'}")
    db.migrate()
    inventory = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess(timeout_s=60))
    inventory.add_host(HOST, realhost_uris[0])
    # direct-boot files only from this folder (the kernel and initrd are copied in below)
    yield ProvisionService(inventory, TemplateService(db, boot_dir=tmp_path / "boot"))
    inventory.close()
    db.dispose()


@pytest.fixture
def template(
    service: ProvisionService, pool: Any, realhost_env: RealhostEnv, tmp_path: Path
) -> Template:
    suffix = uuidlib.uuid4().hex[:8]
    base = create_volume(pool, f"prov-base-{suffix}.qcow2", size_mib=16)
    boot = tmp_path / "boot"
    boot.mkdir(exist_ok=True)
    initrd = seed_reading_initrd(realhost_env.initrd, boot)
    kernel = boot / "vmlinuz"
    shutil.copyfile(realhost_env.kernel, kernel)
    t = Template(
        name=f"prov-tiny-{suffix}",
        pool=pool.name(),
        volume=base.name,
        vcpus=1,
        memory_mib=128,
        network=realhost_env.network,
        domain_type="qemu",
        machine="pc",
        kernel=str(kernel),
        initrd=str(initrd),
        cmdline="console=ttyS0 panic=-1 rdinit=/prov-init",
    )
    return service.templates.add(t)


def _spec(template: Template, **changes: Any) -> ProvisionSpec:
    fields: dict[str, Any] = {
        "name": f"prov-{uuidlib.uuid4().hex[:10]}",
        "template": template.name,
        "host": HOST,
        "owner": "alice",
        "department": "red",
        "created_by": "provision-test",
    }
    fields.update(changes)
    return ProvisionSpec(**fields)


def _remove(service: ProvisionService, uuid: str | None) -> None:
    if uuid:
        service.inventory.open_host(HOST).delete_vm(uuid, delete_storage=True)


def _volumes(pool: Any) -> set[str]:
    pool.refresh(0)
    return {v.name() for v in pool.listAllVolumes(0)}


def test_provisioned_guest_boots_and_reads_its_seed(
    service: ProvisionService, template: Template, pool: Any, libvirt_conns: list[Any]
) -> None:
    token = uuidlib.uuid4().hex
    ci = CloudInit(
        hostname="prov-guest",
        ssh_authorized_keys=("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProvTest prov@test",),
        user_data=f"#!/bin/sh\necho corral-seed: user-data ran token={token}\n",
    )
    result = service.provision(_spec(template, cloud_init=ci, disk_gib=1))
    try:
        assert result.ok, result.reason
        assert result.seed_written and result.started
        conn = libvirt_conns[0]
        dom = conn.lookupByUUIDString(result.uuid)
        console = read_console(conn, dom, f"token={token}")
        assert "corral-seed: hostname=prov-guest" in console
        assert "label=cidata" in console and f"instance-id={result.uuid}" in console
        meta, _ = parse_metadata(parse(dom.XMLDesc(0)))
        assert (meta.owner, meta.department, meta.created_by) == ("alice", "red", "provision-test")
        disk = parse(conn.storageVolLookupByPath(result.disk_path).XMLDesc(0))
        assert disk.findtext("backingStore/path", "").endswith(template.volume)
        assert int(disk.findtext("capacity")) == 1024**3
    finally:
        _remove(service, result.uuid)
    assert _volumes(pool) == {template.volume}


def test_start_failure_undefines_and_deletes_volumes(
    service: ProvisionService, template: Template, pool: Any, libvirt_conns: list[Any]
) -> None:
    spec = _spec(template, network=f"prov-nonet-{uuidlib.uuid4().hex[:6]}")
    result = service.provision(spec)
    _remove(service, result.uuid)
    assert result.status is ProvisionStatus.failed
    assert spec.network in (result.reason or "")
    assert result.leftovers == () and len(result.rolled_back) == 3
    assert spec.name not in {d.name() for d in libvirt_conns[0].listAllDomains(0)}
    assert _volumes(pool) == {template.volume}


def test_define_failure_deletes_the_volumes_made_before(
    service: ProvisionService, template: Template, pool: Any, libvirt_conns: list[Any]
) -> None:
    service.templates.update(template.name, arch="sparc64")
    spec = _spec(template)
    result = service.provision(spec)
    _remove(service, result.uuid)
    assert result.status is ProvisionStatus.failed
    assert "define the new VM" in (result.reason or "")
    assert result.rolled_back == (
        f"volume {pool.name()}/{spec.name}-cidata.iso",
        f"volume {pool.name()}/{spec.name}.qcow2",
    )
    assert spec.name not in {d.name() for d in libvirt_conns[0].listAllDomains(0)}
    assert _volumes(pool) == {template.volume}


def test_full_copy_is_independent_of_the_template(
    service: ProvisionService, template: Template, pool: Any, libvirt_conns: list[Any]
) -> None:
    result = service.provision(_spec(template, disk_mode=DiskMode.copy, disk_gib=1, start=False))
    try:
        assert result.ok and not result.started, result.reason
        disk = parse(libvirt_conns[0].storageVolLookupByPath(result.disk_path).XMLDesc(0))
        assert disk.find("backingStore/path") is None
        assert disk.find("target/format").get("type") == "qcow2"
        assert int(disk.findtext("capacity")) == 1024**3
    finally:
        _remove(service, result.uuid)
    assert _volumes(pool) == {template.volume}
