"""The governance policy (issue 10 item 7): a request breaking a rule is refused naming it;
``corral policy check`` (CLI and REST) finds every inventory VM that drifted, with evidence."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.domain.requests import Size
from corral.engines.policy import Facts, Policy, SizeLimit, check, policy_from_mapping
from corral.errors import ValidationError
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from corral.services.policy import PolicyService, load_policy, request_checker
from corral.services.requests import RequestService
from corral.services.users import UserService
from tests.requests.conftest import ALICE, BOSS, DATA, spec

NODES = Path(__file__).parents[1] / "fixtures" / "nodes"
POLICY = DATA / "policy.yaml"


def facts(**kw: object) -> Facts:
    values: dict[str, object] = {
        "name": "vm1",
        "metadata": {"owner": "alice", "purpose": "ci"},
        "environment": "dev",
        "vcpus": 2,
        "memory_mib": 2048,
    }
    values.update(kw)
    return Facts(**values)  # type: ignore[arg-type]


def test_each_rule_names_itself_and_its_evidence() -> None:
    policy = load_policy(POLICY)
    assert check(policy, facts()) == []
    big = check(policy, facts(vcpus=3, memory_mib=8192))
    assert [(v.rule, v.evidence) for v in big] == [
        ("policy.size.dev", {"vcpus": "3", "max": "2"}),
        ("policy.size.dev", {"memory_mib": "8192", "max": "4096"}),
    ]
    nameless = check(policy, facts(metadata={"owner": "", "purpose": None}))
    assert [v.rule for v in nameless] == [
        "policy.required_metadata.owner",
        "policy.required_metadata.purpose",
    ]
    prod = check(policy, facts(environment="prod", protection_tier="bronze", vcpus=4))
    assert [(v.rule, v.evidence["protection_tier"]) for v in prod] == [
        ("policy.prod_protection", "bronze")
    ]
    assert check(policy, facts(environment="prod", protection_tier="gold")) == []
    wrong_net = check(policy, facts(networks=("lan", "default")))
    assert [(v.rule, v.evidence["network"]) for v in wrong_net] == [("policy.network", "default")]
    long = check(policy, facts(lease_days=120))
    assert [(v.rule, v.evidence) for v in long] == [
        ("policy.max_lease", {"lease_days": "120", "max": "90"})
    ]


def test_a_policy_file_with_an_unknown_rule_or_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown policy rule 'max_vms'"):
        policy_from_mapping({"max_vms": 3}, "p.yaml")
    with pytest.raises(ValidationError, match="'colour' is not a metadata field"):
        policy_from_mapping({"required_metadata": ["colour"]}, "p.yaml")
    assert policy_from_mapping(None, "p.yaml") == Policy()
    assert load_policy(POLICY).sizes["prod"] == SizeLimit(max_vcpus=4)


def test_a_request_breaking_the_policy_is_refused_naming_the_rule(
    service: RequestService,
) -> None:
    service.policy = request_checker(load_policy(POLICY), lambda _t: "lan")
    with pytest.raises(ValidationError, match=r"policy\.size\.dev: the request has vcpus 4"):
        service.create(spec(size=Size(4, 1024, 10.0)), ALICE, submit=True)
    short = replace(load_policy(POLICY), max_lease_days=14)  # under the approval rules' 90
    service.policy = request_checker(short, lambda _t: "lan")
    with pytest.raises(ValidationError, match=r"policy\.max_lease: the request's lease is 30"):
        service.create(spec(), ALICE, submit=True)
    with pytest.raises(ValidationError, match=r"policy\.network: the request is on network wan"):
        service.policy = request_checker(load_policy(POLICY), lambda _t: "wan")
        service.create(spec(), ALICE, submit=True)
    service.policy = request_checker(load_policy(POLICY), lambda _t: "lan")
    made = service.create(spec(), ALICE, submit=True)
    assert made.id > 0  # a request within the policy goes on to the approval rules


def fleet(inventory: Inventory, tmp_path: Path) -> None:
    node = tmp_path / "host-a.xml"
    shutil.copy(NODES / "host-a.xml", node)
    inventory.add_host("a", f"test://{node}")
    inventory.sync()


def test_the_inventory_check_finds_every_drift_with_evidence(
    inventory: Inventory, tmp_path: Path
) -> None:
    fleet(inventory, tmp_path)
    report = PolicyService(inventory.db, load_policy(POLICY), inventory.clock).check_inventory(BOSS)
    assert report.checked == 3
    found = {(f.vm_name, f.rule) for f in report.findings}
    # web-01 (fixture): prod, owner alice, no protection tier, on network "default"
    assert ("web-01", "policy.prod_protection") in found
    assert ("web-01", "policy.network") in found
    assert not any(v == "web-01" and r.startswith("policy.required") for v, r in found)
    # db-01 and old-build carry no Corral metadata at all
    for vm in ("db-01", "old-build"):
        assert (vm, "policy.required_metadata.owner") in found
        assert (vm, "policy.required_metadata.purpose") in found
    web_net = next(f for f in report.findings if f.rule == "policy.network")
    assert web_net.evidence == {"network": "default", "allowed": "lan"} and web_net.host == "a"
    assert sum(report.by_rule.values()) == len(report.findings)
    # a requester of red sees no finding about Finance's VM
    assert PolicyService(inventory.db, load_policy(POLICY)).check_inventory(ALICE).findings == ()


def test_policy_check_on_the_command_line_and_over_rest(
    inventory: Inventory, tmp_path: Path
) -> None:
    fleet(inventory, tmp_path)
    settings = Settings(home=tmp_path / "home", governance_policy=POLICY)
    store = TokenStore(inventory.db)
    UserService(inventory.db).add("olga", roles=["operator"], departments=["red"])
    token = store.create("olga-token", "olga")
    client = TestClient(create_app(inventory, store, settings=settings))
    got = client.get("/api/v1/policy/check", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["checked"] == 3 and body["by_rule"]["policy.network"] == 1
    asked = {"template": "debian-12", "count": 1, "vcpus": 8, "memory_mib": 1024, "disk_gb": 10,
             "owner": "olga", "department": "red", "purpose": "ci", "environment": "dev",
             "lease_days": 30, "submit": True}  # fmt: skip
    admin = UserService(inventory.db).add("ada", roles=["admin"], departments=["red"])
    headers = {"Authorization": f"Bearer {store.create('ada-token', admin.name)}"}
    refused = client.post("/api/v1/requests", json=asked, headers=headers)
    assert refused.status_code == 422 and "policy.size.dev" in refused.text, refused.text
    env = {**os.environ, "CORRAL_HOME": str(tmp_path / "home"),
           "CORRAL_DATABASE_URL": inventory.db.url.render_as_string(hide_password=False),
           "CORRAL_NODE_DIR": str(tmp_path)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "corral", "policy", "check", "--policy", str(POLICY), "-o", "json"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    rows = json.loads(done.stdout)
    assert {(r["vm"], r["rule"]) for r in rows} == {
        (f["vm_name"], f["rule"]) for f in body["findings"]
    }
    assert "3 VMs checked" in done.stderr and "Traceback" not in done.stderr


def test_the_drift_feeds_the_sprawl_reports_lack_of_policy_sign(
    inventory: Inventory, tmp_path: Path
) -> None:
    from corral.engines.costing import load_cost_model
    from corral.services.sprawl import sprawl_report

    fleet(inventory, tmp_path)
    model = load_cost_model()
    without = sprawl_report(inventory, None, model, days=1).signs[0]
    assert without.key == "policy" and "vms_breaking_policy" not in without.figures
    signed = sprawl_report(inventory, None, model, days=1, governance=load_policy(POLICY)).signs[0]
    # 2 required fields + 2 environments sized + prod protection + networks + lease = 7 rules;
    # every VM of host-a breaks one (see the inventory check above): none complies
    assert signed.figures["vms_breaking_policy"] == 3 and signed.figures["policy_rules"] == 7
    assert signed.figures["policy_compliant_share"] == 0.0
    assert signed.status.value == "alert" and "governance policy" in signed.based_on
