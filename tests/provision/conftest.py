"""Fixtures for provisioning on libvirt's test driver: a host with pools and a template."""

from __future__ import annotations

import shutil
from pathlib import Path

import libvirt
import pytest

from corral.domain.provision import ProvisionSpec, Template
from corral.inventory.service import Inventory
from corral.services.provision import ProvisionService
from corral.services.templates import TemplateService
from corral.services.unit_start import Starter

NODE = Path(__file__).resolve().parents[1] / "fixtures" / "provision" / "host-p.xml"
HOST = "p1"
TEMPLATE = Template(
    name="debian-12",
    pool="images",
    volume="debian-12.qcow2",
    vcpus=2,
    memory_mib=2048,
    network="lan",
    domain_type="kvm",
)


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """A private copy of the host's node file (Corral writes its changes back into it)."""
    dest = tmp_path / "host-p.xml"
    shutil.copy(NODE, dest)
    return dest


@pytest.fixture
def service(inventory: Inventory, node: Path) -> ProvisionService:
    inventory.add_host(HOST, f"test://{node}")
    templates = TemplateService(inventory.db)
    templates.add(TEMPLATE)
    return ProvisionService(inventory, templates)


def spec(name: str = "web-07", **changes: object) -> ProvisionSpec:
    fields: dict[str, object] = {
        "name": name,
        "template": TEMPLATE.name,
        "host": HOST,
        "owner": "alice",
        "department": "red",
        "created_by": "bob",
    }
    fields.update(changes)
    return ProvisionSpec(**fields)  # type: ignore[arg-type]


def reopen(node: Path) -> libvirt.virConnect:
    """A fresh connection to the node file: what the host holds now, as any reader sees it."""
    return libvirt.open(f"test://{node}")


def volume_names(node: Path, pool: str) -> set[str]:
    conn = reopen(node)
    try:
        return {v.name() for v in conn.storagePoolLookupByName(pool).listAllVolumes(0)}
    finally:
        conn.close()


def domain_names(node: Path) -> set[str]:
    conn = reopen(node)
    try:
        return {d.name() for d in conn.listAllDomains(0)}
    finally:
        conn.close()


class FakeTime:
    """A clock that moves only when a unit waits: start events get exact times, and a
    blueprint's start delays (SHOP's are 40 s; test_units checks them on this clock) pass at
    once in the tests about something else."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def starter(self) -> Starter:
        return Starter(sleep=self.sleep, monotonic=lambda: self.now)
