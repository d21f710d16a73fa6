"""A deployed blueprint is a unit on libvirt's test driver: its own isolated network, a
pristine snapshot of each VM, and stop / redeploy / teardown each as one audited operation
that a crashed run resumes; start order follows the tiers' dependencies, with hooks (argv
lists run as real processes) and readiness checks (a real TCP listener)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from fastapi.testclient import TestClient
from lxml import etree

from corral.api.app import create_app
from corral.config import Settings
from corral.domain.access import Principal, Role
from corral.domain.requests import RequestState
from corral.errors import NotFoundError, ValidationError
from corral.hypervisor.units import PRISTINE
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from corral.services.audit import Actor, AuditLog, acting_as
from corral.services.blueprints import BlueprintService
from corral.services.fulfil import RequestProvisioner
from corral.services.policy import load_policy, request_checker
from corral.services.provision import ProvisionService
from corral.services.requests import RequestService
from corral.services.templates import TemplateService
from corral.services.unit_start import Starter
from corral.services.units import UnitService
from corral.services.users import UserService
from tests.provision.conftest import HOST, TEMPLATE, FakeTime, domain_names, reopen
from tests.provision.test_blueprints import ALICE, ANN, SHOP, ask, services  # noqa: F401
from tests.provision.test_request_to_vm import setup  # noqa: F401  (fixture)

S = RequestState
BOB = Principal("bob", frozenset({Role.requester}), frozenset({"blue"}))
Services = tuple[RequestService, ProvisionService, BlueprintService]


class Crashed(BaseException):
    """The process 'dies' here (BaseException: nothing on the way catches it)."""


def deploy(svc: Services, blueprint: dict[str, object], starter: Starter | None = None) -> int:
    requests, provision, blueprints = svc
    blueprints.add_mapping(blueprint, "test", "boss")
    view = requests.create(ask(requests, str(blueprint["name"])), ALICE, submit=True)
    view = requests.approve(view.id, ANN)
    units = UnitService(provision.inventory, starter=starter or FakeTime().starter())
    done = RequestProvisioner(requests, provision, units=units).provision(view.id, "ann")
    assert done.state is S.provisioned, done.failure_reason
    return view.id


def networks(node: Path) -> dict[str, etree._Element]:
    conn = reopen(node)
    try:
        return {n.name(): etree.fromstring(n.XMLDesc(0).encode()) for n in conn.listAllNetworks(0)}
    finally:
        conn.close()


def domains(node: Path, marker: str) -> dict[str, libvirt.virDomain]:
    conn = reopen(node)
    return {d.name(): d for d in conn.listAllDomains(0) if marker in d.name()}


def test_a_deployed_blueprint_has_its_own_network_and_pristine_snapshots(
    services: Services,  # noqa: F811
    node: Path,
) -> None:
    rid = deploy(services, SHOP)
    unit = UnitService(services[1].inventory).get(rid, ALICE)
    assert unit.state == "running" and unit.op is None and len(unit.vms) == 4
    assert unit.network.startswith(f"corral-u{rid}-") and unit.hosts == (HOST,)
    net = networks(node)[unit.network]
    assert net.find("forward") is None and net.find("ip") is None  # isolated: no way out
    for name, dom in domains(node, f"-r{rid}-").items():
        xml = etree.fromstring(dom.XMLDesc(0).encode())
        sources = [s.get("network") for s in xml.iterfind("devices/interface/source")]
        assert sources == [unit.network], name
        assert dom.snapshotListNames(0) == [PRISTINE]
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING


def test_stop_redeploy_and_teardown_are_one_audited_operation_each(
    services: Services,  # noqa: F811
    inventory: Inventory,
    node: Path,
) -> None:
    rid = deploy(services, SHOP)
    units = UnitService(inventory, starter=FakeTime().starter(), grace_s=0)
    with acting_as(Actor("alice", "requester", "test")):
        assert units.stop(rid, ALICE).state == "stopped"
        assert all(
            d.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF for d in domains(node, f"-r{rid}-").values()
        )
        web = inventory.find_vm(f"web-r{rid}-1")
        inventory.set_metadata(web.uuid, {"purpose": "scribbled on"}, actor="alice")
        assert units.redeploy(rid, ALICE).state == "running"
        dom = domains(node, f"web-r{rid}-1")[f"web-r{rid}-1"]
        assert b"scribbled on" not in dom.XMLDesc(0).encode()  # back to the pristine definition
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        network = units.get(rid, ALICE).network
        assert units.teardown(rid, ALICE).state == "torn-down"
    assert not {n for n in domain_names(node) if f"-r{rid}-" in n}
    assert network not in networks(node)
    entries = AuditLog(inventory.db).list(target=f"unit:{rid}")
    ops = [e.after.get("op") for e in entries if e.after and e.after.get("op")]
    assert ops == ["stop", "redeploy", "teardown"]
    assert {e.actor for e in entries if e.after and e.after.get("op")} == {"alice"}
    with pytest.raises(Exception, match="torn down"):
        units.stop(rid, ALICE)


def test_a_teardown_that_died_half_way_is_finished_by_the_next_run(
    services: Services,  # noqa: F811
    inventory: Inventory,
    node: Path,
) -> None:
    rid = deploy(services, SHOP)

    def die(point: str) -> None:
        if point == f"web-r{rid}-2:deleted":
            raise Crashed(point)

    with pytest.raises(Crashed):
        UnitService(inventory, crash=die).teardown(rid, ALICE)
    half = UnitService(inventory).get(rid, ALICE)
    assert half.op == "teardown" and half.state == "running"
    assert len({n for n in domain_names(node) if f"-r{rid}-" in n}) == 3
    done = UnitService(inventory).teardown(rid, ALICE)
    assert done.state == "torn-down" and done.op is None and done.vms == ()
    assert not {n for n in domain_names(node) if f"-r{rid}-" in n}
    assert done.network not in networks(node)


def test_a_unit_of_another_department_is_not_seen(
    services: Services,  # noqa: F811
    inventory: Inventory,
) -> None:
    rid = deploy(services, SHOP)
    with pytest.raises(NotFoundError):
        UnitService(inventory).stop(rid, BOB)
    assert UnitService(inventory).all(BOB) == []
    assert [u.request_id for u in UnitService(inventory).all(ALICE)] == [rid]


def test_a_failed_deploy_removes_the_units_network(
    services: Services,  # noqa: F811
    node: Path,
) -> None:
    requests, provision, blueprints = services
    from corral.domain.provision import Template

    provision.templates.add(Template(name="tight-debian", pool="tight", volume="debian-12.qcow2"))
    lab = {
        "name": "lab",
        "tiers": [
            {"name": "db", "template": "debian-12"},
            {"name": "app", "template": "tight-debian"},
        ],
    }
    blueprints.add_mapping(lab, "test", "boss")
    view = requests.approve(requests.create(ask(requests, "lab"), ALICE, submit=True).id, ANN)
    done = RequestProvisioner(requests, provision).provision(view.id, "ann")
    assert done.state is S.failed
    assert not [n for n in networks(node) if n.startswith(f"corral-u{view.id}-")]
    unit = UnitService(provision.inventory).get(view.id, ALICE)
    assert unit.state == "torn-down" and "Not enough free space" in (unit.last_error or "")


@pytest.fixture
def listener() -> Iterator[int]:
    """A real TCP port that answers (what a tier's readiness check waits for)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def hook(log: Path, word: str) -> dict[str, object]:
    code = (
        "import os,sys; "
        "open(sys.argv[1],'a').write(sys.argv[2]+' '+os.environ['CORRAL_TIER']+'\\n')"
    )
    return {"argv": [sys.executable, "-c", code, str(log), word], "timeout_s": 30}


def test_tiers_start_after_their_dependencies_with_hooks_and_readiness(
    services: Services,  # noqa: F811
    tmp_path: Path,
    listener: int,
) -> None:
    log = tmp_path / "hooks.log"
    lab = {
        "name": "lab",
        "tiers": [
            {"name": "web", "template": "debian-12", "after": ["app"], "pre": [hook(log, "pre")]},
            {
                "name": "app",
                "template": "debian-12",
                "after": ["db"],
                "ready": {"port": listener, "address": "127.0.0.1", "timeout_s": 5},
                "post": [hook(log, "post")],
            },
            {"name": "db", "template": "debian-12", "pre": [hook(log, "pre")]},
        ],
    }
    deploy(services, lab)
    assert log.read_text().split("\n") == ["pre db", "post app", "pre web", ""]


def test_a_failing_hook_or_a_port_that_never_answers_fails_the_unit_with_the_reason(
    services: Services,  # noqa: F811
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens there any more
    ticks = iter(range(0, 10_000, 1))
    starter = Starter(sleep=lambda _s: None, monotonic=lambda: float(next(ticks)))
    lab = {
        "name": "lab",
        "tiers": [
            {
                "name": "db",
                "template": "debian-12",
                "ready": {"port": port, "address": "127.0.0.1", "timeout_s": 3},
            },
        ],
    }
    rid = deploy(services, lab, starter)
    unit = UnitService(inventory).get(rid, ALICE)
    assert unit.state == "failed" and f"port {port}" in (unit.last_error or "")
    bad = {
        "name": "bad",
        "tiers": [
            {
                "name": "a",
                "template": "debian-12",
                "pre": [{"argv": [sys.executable, "-c", "raise SystemExit(3)"], "timeout_s": 30}],
            }
        ],
    }
    rid = deploy(services, bad)
    unit = UnitService(inventory).get(rid, ALICE)
    assert unit.state == "failed" and "exit code 3" in (unit.last_error or "")
    # the hook fixed (here: nothing to fix), a redeploy brings it back from pristine
    assert UnitService(inventory).redeploy(rid, ALICE).state == "failed"


def test_a_shell_string_is_refused_as_a_hook(services: Services) -> None:  # noqa: F811
    _, _, blueprints = services
    with pytest.raises(Exception, match="never a shell string"):
        blueprints.add_mapping(
            {
                "name": "x",
                "tiers": [{"name": "a", "template": "debian-12", "pre": [{"argv": "rm -rf /"}]}],
            },
            "test",
            "boss",
        )
    with pytest.raises(Exception, match="cycle"):
        blueprints.add_mapping(
            {
                "name": "y",
                "tiers": [
                    {"name": "a", "template": "debian-12", "after": ["b"]},
                    {"name": "b", "template": "debian-12", "after": ["a"]},
                ],
            },
            "test",
            "boss",
        )


def test_a_deploy_that_died_before_the_unit_started_is_finished_by_the_next_run(
    services: Services,  # noqa: F811
    inventory: Inventory,
    node: Path,
) -> None:
    requests, provision, blueprints = services
    blueprints.add_mapping(SHOP, "test", "boss")
    view = requests.approve(requests.create(ask(requests), ALICE, submit=True).id, ANN)
    rid = view.id

    def die(point: str) -> None:
        if point == f"app-r{rid}-1:pristine":
            raise Crashed(point)

    dying = UnitService(inventory, crash=die)
    with pytest.raises(Crashed):
        RequestProvisioner(requests, provision, units=dying).provision(rid, "ann")
    half = UnitService(inventory).get(rid, ALICE)
    assert half.state == "deploying" and half.op == "deploy"
    assert all(
        d.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF for d in domains(node, f"-r{rid}-").values()
    )
    units = UnitService(inventory, clock=requests.clock, starter=FakeTime().starter())
    done = RequestProvisioner(requests, provision, units=units).provision(rid, "ann")
    assert done.state is S.provisioned
    unit = UnitService(inventory).get(rid, ALICE)
    assert unit.state == "running" and unit.op is None
    for dom in domains(node, f"-r{rid}-").values():
        assert dom.snapshotListNames(0) == [PRISTINE]  # one each: none taken twice
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING


def start_times(t: FakeTime, lines: list[tuple[float, str]]) -> list[tuple[str, float]]:
    return [(line.split(":")[0], at) for at, line in lines if line.endswith("started and ready")]


def test_deploy_and_redeploy_start_the_tiers_with_the_blueprints_start_delays(
    services: Services,  # noqa: F811
    inventory: Inventory,
) -> None:
    """SHOP: db, then app 30 s after db is up, then both web VMs 10 s after app is up."""
    t = FakeTime()
    requests, provision, blueprints = services
    blueprints.add_mapping(SHOP, "test", "boss")
    rid = requests.approve(requests.create(ask(requests), ALICE, submit=True).id, ANN).id
    seen: list[tuple[float, str]] = []
    units = UnitService(inventory, starter=t.starter(), grace_s=0)
    run = RequestProvisioner(requests, provision, units=units)
    assert run.provision(rid, "ann", lambda line: seen.append((t.now, line))).state is S.provisioned
    expected = [
        (f"db-r{rid}-1", 0.0),
        (f"app-r{rid}-1", 30.0),
        (f"web-r{rid}-1", 40.0),
        (f"web-r{rid}-2", 40.0),
    ]
    assert start_times(t, seen) == expected
    assert units.stop(rid, ALICE).state == "stopped"
    seen.clear()
    began = t.now
    assert units.redeploy(rid, ALICE, lambda line: seen.append((t.now - began, line))).state == (
        "running"
    )
    assert start_times(t, seen) == expected
    assert t.slept == [30.0, 10.0, 30.0, 10.0]  # nothing waited while the VMs were made


POLICY = Path(__file__).parents[1] / "requests" / "data" / "policy.yaml"  # allows only "lan"


def nic_networks(node: Path, name: str) -> list[str | None]:
    xml = etree.fromstring(domains(node, name)[name].XMLDesc(0).encode())
    return [s.get("network") for s in xml.iterfind("devices/interface/source")]


def test_the_network_rule_checks_each_tiers_networks_and_allows_the_unit_network(
    services: Services,  # noqa: F811
    inventory: Inventory,
    node: Path,
) -> None:
    requests, _, blueprints = services
    requests.policy = request_checker(load_policy(POLICY), lambda _template: "lan")
    open_lab = {
        "name": "open",
        "tiers": [
            {"name": "db", "template": "debian-12"},
            {"name": "web", "template": "debian-12", "order": 1, "networks": ["lan", "dmz"]},
        ],
    }
    blueprints.add_mapping(open_lab, "test", "boss")
    with pytest.raises(ValidationError) as refused:
        requests.create(ask(requests, "open"), ALICE, submit=True)
    assert refused.value.message == (
        "the request breaks the governance policy: policy.network: tier web is on network dmz, "
        "which the policy does not allow (lan)."
    )
    lab = {**open_lab, "name": "lab"}
    lab["tiers"] = [open_lab["tiers"][0], {**open_lab["tiers"][1], "networks": ["lan"]}]  # type: ignore[index]
    rid = deploy(services, lab)  # the unit's own network is in no policy, and is allowed
    unit = UnitService(inventory).get(rid, ALICE)
    assert unit.network not in load_policy(POLICY).allowed_networks
    assert nic_networks(node, f"db-r{rid}-1") == [unit.network]
    assert nic_networks(node, f"web-r{rid}-1") == [unit.network, "lan"]


def test_a_blueprint_request_breaking_the_network_rule_is_a_422_naming_it_over_rest(
    inventory: Inventory,
    node: Path,
    tmp_path: Path,
) -> None:
    inventory.add_host(HOST, f"test://{node}")
    inventory.sync()
    TemplateService(inventory.db).add(TEMPLATE)
    users, store = UserService(inventory.db), TokenStore(inventory.db)
    users.add("alice", roles=["requester"], departments=["red"])
    users.add("olga", roles=["operator"], departments=["red"])
    as_ = {
        n: {"Authorization": f"Bearer {store.create(f'{n}-token', n)}"} for n in ("alice", "olga")
    }
    settings = Settings(home=tmp_path / "home", governance_policy=POLICY)
    app = create_app(inventory, store, settings=settings)
    client = TestClient(app)
    try:
        tiers = [{"name": "web", "template": "debian-12", "networks": ["wan"]}]
        added = client.post(
            "/api/v1/blueprints", json={"name": "lab", "tiers": tiers}, headers=as_["olga"]
        )
        assert added.status_code == 201, added.text
        body = {"owner": "alice", "department": "red", "purpose": "ci", "environment": "dev",
                "lease_days": 7, "submit": True}  # fmt: skip
        asked = client.post(
            "/api/v1/requests", json={**body, "blueprint": "lab"}, headers=as_["alice"]
        )
        assert asked.status_code == 422, asked.text
        assert asked.headers["content-type"].startswith("application/problem+json")
        assert asked.json()["code"] == "validation-failed"
        assert "policy.network: tier web is on network wan" in asked.json()["detail"]
    finally:
        app.state.jobs.shutdown(wait=True)
