"""The NoCloud seed image and the new domain's XML, read back as a guest and libvirt would."""

from __future__ import annotations

import uuid as uuidlib
from datetime import date

import yaml

from corral.domain.model import OwnerMeta
from corral.domain.provision import CloudInit
from corral.hypervisor.domxml import parse_metadata
from corral.hypervisor.newdomain import DomainPlan, domain_xml
from corral.hypervisor.seed import EMPTY_USER_DATA, build_seed_iso, read_seed_iso, seed_documents
from corral.hypervisor.xmlsafe import parse

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI alice@laptop"


def test_seed_holds_the_three_files_under_the_cidata_label() -> None:
    net = {"version": 2, "ethernets": {"eth0": {"dhcp4": True}}}
    ci = CloudInit(hostname="web07", ssh_authorized_keys=(KEY,), network_config=net,
                   user_data="#!/bin/sh\necho hi\n")  # fmt: skip
    files = read_seed_iso(build_seed_iso(seed_documents("i-123", "web-07", ci)))
    assert files["label"] == "cidata"
    meta = yaml.safe_load(files["meta-data"])
    assert meta == {"instance-id": "i-123", "local-hostname": "web07", "public-keys": [KEY]}
    assert yaml.safe_load(files["network-config"]) == net
    assert files["user-data"] == "#!/bin/sh\necho hi\n"


def test_seed_defaults_hostname_to_the_vm_name_and_has_no_network_file() -> None:
    files = read_seed_iso(build_seed_iso(seed_documents("i-1", "db-01", CloudInit())))
    assert yaml.safe_load(files["meta-data"])["local-hostname"] == "db-01"
    assert files["user-data"] == EMPTY_USER_DATA and "network-config" not in files


def test_values_never_change_the_document_structure() -> None:
    owner = "</owner><corral:owner>mallory"
    meta = OwnerMeta(owner=owner, department="red", expires_on=date(2027, 1, 31), created_by="b")
    plan = DomainPlan(
        name="web-07", uuid=str(uuidlib.uuid4()), vcpus=2, memory_mib=512,
        disk_path="/p/web-07.qcow2", seed_path="/p/web-07-cidata.iso", meta=meta,
        network="lan", domain_type="qemu", kernel="/k", initrd="/i", cmdline="console=ttyS0 a=<b>",
    )  # fmt: skip
    root = parse(domain_xml(plan))
    parsed, is_template = parse_metadata(root)
    assert parsed.owner == owner and parsed.expires_on == date(2027, 1, 31) and not is_template
    assert root.get("type") == "qemu" and root.findtext("os/cmdline") == "console=ttyS0 a=<b>"
    disks = [(d.find("target").get("dev"), d.find("source").get("file"))
             for d in root.iterfind("devices/disk")]  # fmt: skip
    assert disks == [("vda", "/p/web-07.qcow2"), ("vdb", "/p/web-07-cidata.iso")]
    assert root.find("os/boot") is None  # direct kernel boot


def test_disk_boot_without_a_kernel() -> None:
    plan = DomainPlan(name="a", uuid=str(uuidlib.uuid4()), vcpus=1, memory_mib=256,
                      disk_path="/d.qcow2", meta=OwnerMeta(owner="o"))  # fmt: skip
    root = parse(domain_xml(plan))
    assert root.find("os/boot").get("dev") == "hd" and root.find("os/kernel") is None
    assert root.find("devices/interface") is None and len(root.findall("devices/disk")) == 1
