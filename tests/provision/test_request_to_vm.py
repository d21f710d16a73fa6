"""An approved request becomes its VMs on libvirt's test driver, or fails leaving nothing.

The placement engine chooses among the hosts holding the template's image; the VMs carry the
request's owner, department and lease; no host (or a VM that cannot be made) fails the request
with the reason and releases its reservation; a run stopped at any point between claim and
commit is resumed without ever making a VM twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
from lxml import etree
from sqlalchemy import func, select

from corral.domain.access import Principal, Role
from corral.domain.provision import Template
from corral.domain.requests import RequestState, Size
from corral.engines.approval import load_rules
from corral.engines.costing import load_cost_model
from corral.hypervisor.provision import Provisioner
from corral.inventory.service import Inventory
from corral.services.audit import Actor, AuditLog, acting_as
from corral.services.fleet import live_fleet
from corral.services.fulfil import RequestProvisioner
from corral.services.provision import ProvisionService
from corral.services.quotas import Prices
from corral.services.requests import RequestService, RequestSpec
from corral.services.templates import TemplateService
from corral.store import models as m
from tests.conftest import Clock
from tests.provision.conftest import HOST, NODE, TEMPLATE, domain_names, volume_names

S = RequestState
RULES = Path(__file__).parents[1] / "requests" / "data" / "rules.yaml"
ALICE = Principal("alice", frozenset({Role.requester}), frozenset({"red"}))
ANN = Principal("ann", frozenset({Role.approver}), frozenset({"red"}))
BASE = {"debian-12.qcow2"}


class Crashed(BaseException):
    """The process 'dies' here (BaseException: nothing on the way catches it)."""


SMALL = Size(1, 1024, 10.0)


def spec(count: int = 1, size: Size = SMALL, template: str = "debian-12") -> RequestSpec:
    return RequestSpec(template, count, size, "alice", "red", "load tests", "dev", 30)


def big_host(path: Path) -> None:
    """A second host, bigger than p1 (16 threads), whose pool 'images' lacks the image."""
    node = etree.parse(str(NODE)).getroot()
    node.find("cpu/cores").text = "16"
    node.find("cpu/active").text = "16"
    for pool in node.findall("pool"):
        node.remove(pool)
    for dom in node.findall("domain"):
        node.remove(dom)
    pool = etree.SubElement(node, "pool", type="dir")
    etree.SubElement(pool, "name").text = "images"
    etree.SubElement(pool, "uuid").text = "0a000000-0000-4000-8000-0000000000b1"
    etree.SubElement(etree.SubElement(pool, "target"), "path").text = "/var/lib/libvirt/q"
    etree.ElementTree(node).write(str(path))


@pytest.fixture
def setup(
    inventory: Inventory, node: Path, clock: Clock
) -> tuple[RequestService, ProvisionService]:
    inventory.add_host(HOST, f"test://{node}")
    inventory.sync()
    templates = TemplateService(inventory.db)
    templates.add(TEMPLATE)
    rules = replace(load_rules(RULES), ha_failures=0)
    requests = RequestService(
        inventory.db,
        rules,
        Prices.of(load_cost_model()),
        lambda: live_fleet(inventory).fleet,
        clock=clock,
    )
    return requests, ProvisionService(inventory, templates, clock=clock)


def approved(requests: RequestService, request: RequestSpec) -> int:
    view = requests.create(request, ALICE, submit=True)
    if view.state is S.pending:
        view = requests.approve(view.id, ANN)
    assert view.state is S.approved, view.reasons
    return view.id


def reservations(inventory: Inventory, request_id: int) -> int:
    with inventory.db.session() as s:
        q = select(func.count()).where(m.RequestReservation.request_id == request_id)
        return int(s.scalar(q) or 0)


def test_an_approved_request_becomes_running_vms_with_its_metadata(
    setup: tuple[RequestService, ProvisionService], inventory: Inventory, node: Path, clock: Clock
) -> None:
    requests, provision = setup
    requests.rules = replace(requests.rules, auto_approve=None)  # an approver decides
    request_id = approved(requests, spec(count=2))
    steps: list[str] = []
    with acting_as(Actor("ann", "approver", "test")):
        view = RequestProvisioner(requests, provision).provision(request_id, "ann", steps.append)
    assert view.state is S.provisioned and len(view.provisioned_vms) == 2
    names = [f"debian-12-r{request_id}-1", f"debian-12-r{request_id}-2"]
    assert set(names) <= domain_names(node)
    for name, uuid in zip(names, view.provisioned_vms, strict=True):
        vm = inventory.find_vm(name)
        assert vm.uuid == uuid and vm.host == HOST and vm.state == "running"
        assert (vm.owner, vm.department, vm.created_by) == ("alice", "red", "alice")
        assert (vm.purpose, vm.environment) == ("load tests", "dev")
        assert vm.expires_on == clock.now.date() + timedelta(days=30)
        assert (vm.vcpus, vm.memory_mib) == (1, 1024)
    assert reservations(inventory, request_id) == 0
    assert [d.action for d in view.decisions][-2:] == ["provisioning", "provisioned"]
    assert any(f"{names[1]}: made on {HOST}" in line for line in steps)
    entries = AuditLog(inventory.db).list(target="request-vm:")
    assert {e.after["state"] for e in entries if e.after and "state" in e.after} >= {
        "claimed",
        "making",
        "created",
    }
    assert {e.actor for e in entries} == {"ann"}


def test_a_retry_of_a_provisioned_request_makes_nothing(
    setup: tuple[RequestService, ProvisionService], node: Path
) -> None:
    requests, provision = setup
    request_id = approved(requests, spec())
    first = RequestProvisioner(requests, provision).provision(request_id, "alice")
    again = RequestProvisioner(requests, provision).provision(request_id, "alice")
    assert again.state is S.provisioned and again.provisioned_vms == first.provisioned_vms
    assert sum(n.startswith("debian-12-r") for n in domain_names(node)) == 1


def test_no_host_holding_the_image_fails_with_the_reason_and_releases_the_reservation(
    setup: tuple[RequestService, ProvisionService], inventory: Inventory, node: Path
) -> None:
    requests, provision = setup
    provision.templates.add(Template(name="centos-7", pool="images", volume="centos-7.qcow2"))
    request_id = approved(requests, spec(template="centos-7"))
    assert reservations(inventory, request_id) == 1
    view = RequestProvisioner(requests, provision).provision(request_id, "alice")
    assert view.state is S.failed
    assert "no host holds template centos-7's image (images/centos-7.qcow2)" in (
        view.failure_reason or ""
    )
    assert reservations(inventory, request_id) == 0
    assert volume_names(node, "images") == BASE and "centos-7-r1-1" not in domain_names(node)


def test_no_host_that_fits_and_holds_the_image_fails_naming_the_filters(
    setup: tuple[RequestService, ProvisionService], inventory: Inventory, tmp_path: Path
) -> None:
    requests, provision = setup
    big = tmp_path / "host-q.xml"
    big_host(big)
    inventory.add_host("q1", f"test://{big}")
    inventory.sync()
    # 12 vCPUs: approval places it on q1 (16 threads); p1 has the image but only 8 threads.
    request_id = approved(requests, spec(size=Size(12, 1024, 10.0)))
    assert requests.get(request_id, ALICE).placement[0].host == "q1"
    view = RequestProvisioner(requests, provision).provision(request_id, "alice")
    assert view.state is S.failed
    reason = view.failure_reason or ""
    assert "no host can take the VMs now" in reason and "cores 1" in reason
    assert "image 1" in reason
    assert reservations(inventory, request_id) == 0
    with inventory.db.session() as s:
        assert s.scalar(select(func.count()).select_from(m.ProvisionRow)) == 0


def test_a_failing_second_vm_removes_the_first(
    setup: tuple[RequestService, ProvisionService], inventory: Inventory, node: Path
) -> None:
    requests, provision = setup
    request_id = approved(requests, spec(count=2))
    second = f"debian-12-r{request_id}-2"

    def someone_takes_the_second_name(point: str) -> None:
        if point == f"debian-12-r{request_id}-1:created":
            dom = etree.Element("domain", type="test")
            etree.SubElement(dom, "name").text = second
            etree.SubElement(dom, "memory", unit="MiB").text = "256"
            etree.SubElement(etree.SubElement(dom, "os"), "type").text = "hvm"
            hv = cast(Provisioner, inventory.open_host(HOST))
            hv.define_domain(etree.tostring(dom, encoding="unicode"))

    run = RequestProvisioner(requests, provision, crash=someone_takes_the_second_name)
    view = run.provision(request_id, "alice")
    assert view.state is S.failed
    assert f"{second} on {HOST}: host {HOST} already has a domain named {second}" in (
        view.failure_reason or ""
    )
    assert f"debian-12-r{request_id}-1" not in domain_names(node)
    assert volume_names(node, "images") == BASE  # the first VM's disk and seed went too
    assert reservations(inventory, request_id) == 0
    with inventory.db.session() as s:
        live = select(m.VM.name).where(m.VM.deleted_at.is_(None), m.VM.name.like("debian-12-r%"))
        assert list(s.scalars(live)) == [second]  # the other's domain is left alone


@pytest.mark.parametrize(
    "point",
    ["claimed", "{vm}-1:making", "{vm}-1:disk", "{vm}-1:started", "{vm}-1:created", "made"],
)
def test_a_run_stopped_between_claim_and_commit_is_resumed_without_a_second_vm(
    setup: tuple[RequestService, ProvisionService],
    inventory: Inventory,
    node: Path,
    point: str,
) -> None:
    requests, provision = setup
    request_id = approved(requests, spec(count=2))
    stop_at = point.format(vm=f"debian-12-r{request_id}")

    def crash(at: str) -> None:
        if at == stop_at:
            raise Crashed(at)

    with pytest.raises(Crashed):
        RequestProvisioner(requests, provision, crash=crash).provision(request_id, "alice")
    assert requests.get(request_id, ALICE).state is S.provisioning
    assert reservations(inventory, request_id) == 2  # still held while it is unfinished
    view = RequestProvisioner(requests, provision).provision(request_id, "alice")
    assert view.state is S.provisioned, view.failure_reason
    made = sorted(n for n in domain_names(node) if n.startswith("debian-12-r"))
    assert made == [f"debian-12-r{request_id}-1", f"debian-12-r{request_id}-2"]
    assert volume_names(node, "images") == BASE | {
        f"debian-12-r{request_id}-{n}{suffix}"
        for n in (1, 2)
        for suffix in (".qcow2", "-cidata.iso")
    }
    uuids = {inventory.find_vm(name).uuid for name in made}
    assert uuids == set(view.provisioned_vms)
    assert reservations(inventory, request_id) == 0
