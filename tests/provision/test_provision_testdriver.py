"""Issue 10 item 5 on libvirt's test driver: a VM made from a template, or nothing at all.

Each failure is injected for real (a pool too full for the disk or the seed, a template
volume that is not there, a volume name already taken, a host whose node file is gone), and
the host is then read through a fresh connection: no domain and no volume of the failed VM
may remain, and what was there before must still be there.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from corral.domain.provision import CloudInit, DiskMode, ProvisionStatus, Template
from corral.errors import ValidationError
from corral.hypervisor.domxml import parse_metadata
from corral.hypervisor.xmlsafe import parse
from corral.services.audit import Actor, AuditLog, acting_as
from corral.services.provision import ProvisionService
from corral.store import models as m
from tests.provision.conftest import HOST, TEMPLATE, domain_names, reopen, spec, volume_names

BASE = {"debian-12.qcow2"}
GIB = 1024**3


def test_linked_clone_is_defined_with_metadata_and_seed(
    service: ProvisionService, node: Path
) -> None:
    ci = CloudInit(hostname="web07", ssh_authorized_keys=("ssh-ed25519 AAAAC3Nza alice@x",))
    result = service.provision(
        spec(expires_on=date(2027, 3, 31), disk_gib=10, cloud_init=ci, purpose="shop")
    )
    assert result.status is ProvisionStatus.succeeded, result.reason
    assert result.started and result.uuid
    conn = reopen(node)
    dom = conn.lookupByUUIDString(result.uuid)
    root = parse(dom.XMLDesc(0))
    meta, is_template = parse_metadata(root)
    assert (meta.owner, meta.department, meta.created_by) == ("alice", "red", "bob")
    assert meta.expires_on == date(2027, 3, 31) and not is_template
    assert root.findtext("vcpu") == "2" and root.find("memory").text == str(2048 * 1024)
    assert root.find("devices/interface/source").get("network") == "lan"
    assert [d.get("file") for d in root.iterfind("devices/disk/source")] == [
        result.disk_path,
        result.seed_path,
    ]
    overlay = conn.storagePoolLookupByName("images").storageVolLookupByName("web-07.qcow2")
    vol = parse(overlay.XMLDesc(0))
    assert vol.findtext("backingStore/path") == "/var/lib/libvirt/images/prov/debian-12.qcow2"
    assert int(vol.findtext("capacity")) == 10 * GIB
    # The test driver cannot upload: the seed volume is there, empty, and the result says so.
    assert not result.seed_written and "test driver" in result.notes[0]
    assert volume_names(node, "images") == BASE | {"web-07.qcow2", "web-07-cidata.iso"}
    vm = service.inventory.find_vm("web-07")
    assert (vm.owner, vm.host, vm.state) == ("alice", HOST, "running")


def test_full_copy_has_no_backing_store(service: ProvisionService, node: Path) -> None:
    result = service.provision(spec("db-03", disk_mode=DiskMode.copy, start=False))
    assert result.ok and not result.started
    conn = reopen(node)
    vol = conn.storagePoolLookupByName("images").storageVolLookupByName("db-03.qcow2")
    assert parse(vol.XMLDesc(0)).find("backingStore") is None
    assert vol.info()[1] == 2 * GIB  # never smaller than the template


def test_disk_full_leaves_nothing(service: ProvisionService, node: Path) -> None:
    result = service.provision(spec("big-01", disk_mode=DiskMode.copy, disk_gib=200))
    assert result.status is ProvisionStatus.failed
    assert "Not enough free space" in (result.reason or "")
    assert volume_names(node, "images") == BASE
    assert "big-01" not in domain_names(node)


def test_seed_that_does_not_fit_removes_the_disk_made_before_it(
    service: ProvisionService, node: Path
) -> None:
    service.templates.add(Template(name="tight", pool="tight", volume="debian-12.qcow2"))
    result = service.provision(spec("web-08", template="tight"))
    assert result.status is ProvisionStatus.failed
    assert "web-08-cidata.iso" in (result.reason or "")
    assert result.rolled_back == ("volume tight/web-08.qcow2",) and result.leftovers == ()
    assert volume_names(node, "tight") == BASE | {"ballast.img"}
    assert "web-08" not in domain_names(node)
    assert "web-08.qcow2" not in node.read_text()  # not kept in the node file either


def test_volume_already_there_is_left_alone_and_the_new_disk_removed(
    service: ProvisionService, node: Path
) -> None:
    first = service.provision(spec("app-01", start=False))
    assert first.ok
    # The VM is gone from libvirt but its seed volume stayed (deleted without its storage).
    conn = reopen(node)
    service.inventory.open_host(HOST).delete_vm(first.uuid or "", delete_storage=False)
    service.inventory.sync([HOST])
    conn.close()
    pool_before = volume_names(node, "images")
    pool_before.discard("app-01.qcow2")
    service.inventory.open_host(HOST).delete_volume("images", "app-01.qcow2")
    result = service.provision(spec("app-01"))
    assert result.status is ProvisionStatus.failed
    assert "app-01-cidata.iso" in (result.reason or "")
    assert volume_names(node, "images") == pool_before  # the old seed stays, the new disk went
    assert "app-01" not in domain_names(node)


def test_missing_template_volume_creates_nothing(service: ProvisionService, node: Path) -> None:
    service.templates.add(Template(name="gone", pool="images", volume="centos-7.qcow2"))
    result = service.provision(spec("web-09", template="gone"))
    assert result.status is ProvisionStatus.failed
    assert "centos-7.qcow2 is not in pool images" in (result.reason or "")
    assert volume_names(node, "images") == BASE and result.rolled_back == ()


def test_name_taken_on_the_host_creates_nothing(service: ProvisionService, node: Path) -> None:
    result = service.provision(spec("existing-01"))
    assert result.status is ProvisionStatus.failed
    assert "already has a domain named existing-01" in (result.reason or "")
    assert volume_names(node, "images") == BASE


def test_host_gone_fails_with_the_reason(service: ProvisionService, node: Path) -> None:
    node.unlink()
    result = service.provision(spec("web-10"))
    assert result.status is ProvisionStatus.failed
    assert "node file could not be loaded" in (result.reason or "")


def test_invalid_spec_is_refused_before_anything(service: ProvisionService) -> None:
    for bad in (
        spec("bad name"),
        spec(owner=""),
        spec(vcpus=0),
        spec(cloud_init=CloudInit(hostname="-x-")),
        spec(cloud_init=CloudInit(ssh_authorized_keys=("not a key",))),
        spec(cloud_init=CloudInit(network_config={"version": 3})),
    ):
        with pytest.raises(ValidationError):
            service.provision(bad)
    with service.inventory.db.session() as s:
        assert s.scalar(select(m.ProvisionRow.id)) is None


def test_attempts_are_recorded_and_audited(service: ProvisionService) -> None:
    with acting_as(Actor("carol", "operator", "test")):
        ok = service.provision(spec("web-11"))
        failed = service.provision(spec("web-12", template="nope"))
    assert ok.ok and failed.status is ProvisionStatus.failed
    history = service.history()
    assert [(r.name, r.status) for r in history] == [
        ("web-12", ProvisionStatus.failed),
        ("web-11", ProvisionStatus.succeeded),
    ]
    assert history[1].uuid == ok.uuid and history[0].reason == failed.reason
    entries = AuditLog(service.inventory.db).list(target="provision:")
    created = {e.target: e.after["name"] for e in entries if e.action == "create" and e.after}
    finished = {
        created[e.target]: e.after["status"]
        for e in entries
        if e.action == "update" and e.after and "status" in e.after
    }
    assert finished == {"web-11": "succeeded", "web-12": "failed"}
    assert all(e.actor == "carol" for e in entries)
    assert TEMPLATE.name in {t.name for t in service.templates.all()}


def test_user_data_is_not_kept_in_clear(service: ProvisionService) -> None:
    secret = "#cloud-config\nchpasswd: {list: 'root:S3cret-Pa55'}\n"
    assert service.provision(spec("web-13", cloud_init=CloudInit(user_data=secret))).ok
    with service.inventory.db.session() as s:
        row = s.scalar(select(m.ProvisionRow).where(m.ProvisionRow.name == "web-13"))
        assert row is not None
        assert "S3cret" not in str(row.spec) and "S3cret" not in str(row.outcome)
        assert row.spec["cloud_init"]["user_data"]["bytes"] == len(secret)


def test_host_gone_half_way_names_the_leftover_and_clean_up_removes_it(
    service: ProvisionService, node: Path
) -> None:
    away = node.with_suffix(".away")

    def host_vanishes_after_the_disk(step: str) -> None:
        if step == "disk":
            node.rename(away)  # the host's node file is gone: it no longer opens

    result = service.provision(spec("web-14"), on_step=host_vanishes_after_the_disk)
    assert result.status is ProvisionStatus.failed
    assert "could not be loaded" in (result.reason or "")
    assert result.leftovers == ("volume images/web-14.qcow2",) and result.rolled_back == ()
    away.rename(node)  # the host is back, with the disk the attempt made
    assert "web-14.qcow2" in volume_names(node, "images")
    cleaned = service.clean_up(result.id or 0)
    assert cleaned.leftovers == () and cleaned.rolled_back == ("volume images/web-14.qcow2",)
    assert volume_names(node, "images") == BASE
    assert service.history()[0].leftovers == ()
    assert service.clean_up(result.id or 0) == cleaned  # nothing left: nothing done
