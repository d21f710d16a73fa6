"""Issue 10 item 6 on a real libvirtd host: a unit's isolated network and the pristine
snapshot a redeploy goes back to.

A VM is made shut off from a template on a network Corral created with no forward (as a
blueprint's VMs are), gets its pristine snapshot: internal, of its qcow2 system disk only
(its raw cloud-init seed is read-only, which libvirt leaves out; libvirt 9 cannot revert an
external snapshot),
boots, and is reverted: off again, at the snapshot, and boots once more. Names carry a
random suffix (the hosts are shared) and everything is removed at the end.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from typing import Any, cast

from test_provision import HOST, _spec, service, template  # noqa: F401  (fixtures)

from corral.domain.provision import Template
from corral.hypervisor.units import PRISTINE, UnitHost
from corral.hypervisor.xmlsafe import parse
from corral.services.provision import ProvisionService, seed_volume_name


def _wait_running(host: UnitHost, uuid: str) -> None:
    for _ in range(100):
        if host.run_state(uuid) == "running":
            return
        time.sleep(0.1)
    raise AssertionError(f"{uuid} did not start")


def test_a_unit_vm_on_its_isolated_network_reverts_to_its_pristine_snapshot(
    service: ProvisionService,  # noqa: F811
    template: Template,  # noqa: F811
    libvirt_conns: list[Any],
    pool: Any,
) -> None:
    host = cast(UnitHost, service.inventory.open_host(HOST))
    conn = libvirt_conns[0]
    net = f"corral-u-selfnext-{uuidlib.uuid4().hex[:6]}"
    assert host.ensure_isolated_network(net) is True
    assert host.ensure_isolated_network(net) is False  # a second call changes nothing
    result = None
    try:
        xml = parse(conn.networkLookupByName(net).XMLDesc(0))
        assert xml.find("forward") is None and xml.find("ip") is None
        assert conn.networkLookupByName(net).isActive()
        result = service.provision(_spec(template, network=net, start=False, seed_readonly=True))
        assert result.ok and not result.started, result.reason
        dom = conn.lookupByUUIDString(result.uuid)
        sources = [
            s.get("network") for s in parse(dom.XMLDesc(0)).iterfind("devices/interface/source")
        ]
        assert sources == [net]
        assert host.take_pristine(result.uuid) is True
        assert host.take_pristine(result.uuid) is False
        snap = parse(dom.snapshotLookupByName(PRISTINE, 0).getXMLDesc(0))
        modes = {d.get("name"): d.get("snapshot") for d in snap.iterfind("disks/disk")}
        assert modes == {"vda": "internal", "vdb": "no"}
        host.start(result.uuid)
        _wait_running(host, result.uuid)
        began = time.perf_counter()
        host.revert_pristine(result.uuid)
        reverted = time.perf_counter() - began
        assert host.run_state(result.uuid) == "stopped"
        assert dom.snapshotCurrent(0).getName() == PRISTINE
        host.start(result.uuid)
        _wait_running(host, result.uuid)
        print(f"revert to pristine of a running TCG guest: {reverted:.2f} s")
    finally:
        if result is not None and result.uuid:
            host.delete_vm(result.uuid, delete_storage=True)
            host.delete_volume(pool.name(), seed_volume_name(result.name))
        host.remove_network(net)
    assert net not in {n.name() for n in conn.listAllNetworks(0)}
    pool.refresh(0)
    assert {v.name() for v in pool.listAllVolumes(0)} == {template.volume}
