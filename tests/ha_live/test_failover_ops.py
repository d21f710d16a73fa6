"""What the live HA manager asks of a host, on libvirt's test driver (two node-file hosts)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.hypervisor.libvirt import connect
from corral.hypervisor.libvirt.hypervisor import LibvirtHypervisor
from corral.hypervisor.uri import HostAccess

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"
WEB = "0a000000-0000-4000-8000-000000000001"


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[tuple[LibvirtHypervisor, LibvirtHypervisor]]:
    shutil.copytree(NODES, tmp_path / "nodes")
    access = HostAccess(node_dir=tmp_path)
    a = connect(f"test://{tmp_path / 'nodes' / 'host-a.xml'}", access=access)
    b = connect(f"test://{tmp_path / 'nodes' / 'host-b.xml'}", access=access)
    yield a, b
    a.close()
    b.close()


def test_run_state_and_ping(two_hosts: tuple[LibvirtHypervisor, LibvirtHypervisor]) -> None:
    a, b = two_hosts
    a.ping()
    assert a.run_state(WEB) == "running"
    assert b.run_state(WEB) == "absent"


def test_start_definition_starts_elsewhere_and_never_twice(
    two_hosts: tuple[LibvirtHypervisor, LibvirtHypervisor],
) -> None:
    a, b = two_hosts
    xml = a.domain_xml(WEB)
    a.start_definition(xml)  # already running there: left alone, no error
    assert a.run_state(WEB) == "running"
    b.start_definition(xml)
    assert b.run_state(WEB) == "running"
    b.start_definition(xml)  # a resumed manager asking again: still the one copy
    copies = [d for d in b._conn.listAllDomains() if d.UUIDString() == WEB]
    assert len(copies) == 1 and copies[0].isActive()
