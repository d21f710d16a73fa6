"""Blueprints on libvirt's test driver: a three-tier unit is one request (one quota check, one
approval), provisioned tier by tier (its start delays are waited when the unit starts:
tests/provision/test_units.py); a tier that fails undoes the tiers made before it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from corral.domain.access import Principal, Role
from corral.domain.provision import Template
from corral.domain.requests import RequestState, Size
from corral.engines.approval import Limits
from corral.errors import ValidationError
from corral.inventory.service import Inventory
from corral.services.blueprints import BlueprintService
from corral.services.fulfil import RequestProvisioner
from corral.services.provision import ProvisionService
from corral.services.quotas import QuotaService
from corral.services.requests import RequestService, RequestSpec
from corral.services.units import UnitService
from tests.conftest import Clock
from tests.provision.conftest import HOST, FakeTime, domain_names, volume_names
from tests.provision.test_request_to_vm import ALICE, ANN, BASE, setup  # noqa: F401  (fixture)

S = RequestState
BOSS = Principal("boss", frozenset({Role.admin}), frozenset())
SHOP = {
    "name": "shop",
    "description": "web x2 + app + db",
    "tiers": [
        {"name": "web", "template": "debian-12", "count": 2, "order": 3, "start_delay_s": 10},
        {"name": "db", "template": "debian-12", "vcpus": 2, "memory_mib": 2048, "order": 1},
        {"name": "app", "template": "debian-12", "order": 2, "start_delay_s": 30},
    ],
}


@pytest.fixture
def services(
    setup: tuple[RequestService, ProvisionService],  # noqa: F811
) -> tuple[RequestService, ProvisionService, BlueprintService]:
    requests, provision = setup
    blueprints = BlueprintService(provision.inventory.db, provision.templates)
    requests.blueprints = blueprints.parts
    requests.rules = replace(requests.rules, auto_approve=None)
    return requests, provision, blueprints


def ask(requests: RequestService, blueprint: str = "shop") -> RequestSpec:
    return RequestSpec("", 1, Size(1, 1, 0), "alice", "red", "shop demo", "dev", 14, blueprint)


def test_a_three_tier_blueprint_is_one_request_made_tier_by_tier(
    services: tuple[RequestService, ProvisionService, BlueprintService],
    inventory: Inventory,
    node: Path,
    clock: Clock,
) -> None:
    requests, provision, blueprints = services
    blueprints.add_mapping(SHOP, "test", "boss")
    assert [t.name for t in blueprints.get("shop").in_order()] == ["db", "app", "web"]
    view = requests.create(ask(requests), ALICE, submit=True)
    assert view.state is S.pending and view.spec.count == 4 and view.spec.blueprint == "shop"
    assert [(p.tier, p.count, p.size.vcpus) for p in view.parts] == [
        ("db", 1, 2),
        ("app", 1, 2),  # the template's size where the tier says none
        ("web", 2, 2),
    ]
    quotas = QuotaService(inventory.db, requests.prices, clock)
    view = requests.approve(view.id, ANN)
    assert view.state is S.approved and len(view.placement) == 4
    used = quotas.get("red", BOSS).used
    assert (used.vms, used.vcpus, used.memory_mib) == (4, 8, 2048 * 4)
    steps: list[str] = []
    units = UnitService(inventory, clock=requests.clock, starter=FakeTime().starter())
    run = RequestProvisioner(requests, provision, units=units)
    done = run.provision(view.id, "ann", steps.append)
    assert done.state is S.provisioned and len(done.provisioned_vms) == 4
    made = [line.split(":")[0] for line in steps if ": made on" in line]
    rid = view.id
    assert made == [f"db-r{rid}-1", f"app-r{rid}-1", f"web-r{rid}-1", f"web-r{rid}-2"]
    assert set(made) <= domain_names(node)
    db_vm = inventory.find_vm(f"db-r{rid}-1")
    assert (db_vm.vcpus, db_vm.memory_mib, db_vm.owner) == (2, 2048, "alice")
    assert [p.tier for p in run.planned(rid)] == ["db", "app", "web", "web"]
    used = quotas.get("red", BOSS).used
    assert used.vms == 4 and used.vcpus == 8  # now the VMs themselves, not reservations


def test_a_blueprint_counts_against_the_quota_as_a_whole(
    services: tuple[RequestService, ProvisionService, BlueprintService],
    inventory: Inventory,
    clock: Clock,
) -> None:
    requests, _, blueprints = services
    blueprints.add_mapping(SHOP, "test", "boss")
    QuotaService(inventory.db, requests.prices, clock).set("red", Limits(vms=3), BOSS)
    view = requests.create(ask(requests), ALICE, submit=True)
    assert view.state is S.denied
    assert [r.rule for r in view.reasons] == ["quota.vms"]


def test_a_failing_second_tier_removes_the_first(
    services: tuple[RequestService, ProvisionService, BlueprintService],
    inventory: Inventory,
    node: Path,
) -> None:
    requests, provision, blueprints = services
    # "tight" holds the image but has no room for a seed: the app tier cannot be made.
    provision.templates.add(Template(name="tight-debian", pool="tight", volume="debian-12.qcow2"))
    three = {
        "name": "lab",
        "tiers": [
            {"name": "db", "template": "debian-12"},
            {"name": "app", "template": "tight-debian"},
            {"name": "web", "template": "debian-12"},
        ],
    }
    blueprints.add_mapping(three, "test", "boss")
    view = requests.approve(requests.create(ask(requests, "lab"), ALICE, submit=True).id, ANN)
    assert view.state is S.approved
    done = RequestProvisioner(requests, provision).provision(view.id, "ann")
    assert done.state is S.failed
    assert f"app-r{view.id}-1 on {HOST}" in (done.failure_reason or "")
    assert "Not enough free space" in (done.failure_reason or "")
    assert not {n for n in domain_names(node) if f"-r{view.id}-" in n}
    assert volume_names(node, "images") == BASE and volume_names(node, "tight") == BASE | {
        "ballast.img"
    }
    assert [p.state for p in RequestProvisioner(requests, provision).planned(view.id)] == [
        "removed",
        "making",
        "claimed",
    ]


def test_a_blueprint_is_checked_when_added(
    services: tuple[RequestService, ProvisionService, BlueprintService],
) -> None:
    _, _, blueprints = services
    bad = {"name": "x", "tiers": [{"name": "a", "template": "nope"}]}
    with pytest.raises(ValidationError, match="template 'nope' is not in the catalog"):
        blueprints.add_mapping(bad, "test", "boss")
    twice = {"name": "x", "tiers": [{"name": "a", "template": "debian-12"}] * 2}
    with pytest.raises(ValidationError, match="tier a appears twice"):
        blueprints.add_mapping(twice, "test", "boss")
    with pytest.raises(ValidationError, match="unknown tier field 'size'"):
        blueprints.add_mapping(
            {"name": "x", "tiers": [{"name": "a", "template": "debian-12", "size": 3}]},
            "test",
            "boss",
        )
    assert blueprints.all() == []


def test_a_request_naming_an_unknown_blueprint_is_bad_input(
    services: tuple[RequestService, ProvisionService, BlueprintService],
) -> None:
    """The name is in the request's body: a 422 with the reason, not a 404 of the route."""
    requests, _, _ = services
    with pytest.raises(ValidationError, match="no blueprint named 'nope'"):
        requests.create(ask(requests, "nope"), ALICE, submit=True)
