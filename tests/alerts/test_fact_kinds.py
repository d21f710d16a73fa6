"""The rule kinds that read more than metrics, on real data: a fleet synced from libvirt's
test driver (HA, licences) and a backup repository on disk with real qcow2 restore points.

Each test goes through the alert service end to end (the facts read by
corral.services.alert_facts, the rules evaluated, the alerts stored) and checks both that
the condition fires and that the healthy fleet raises nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from lxml import etree

from corral.api.app import create_app
from corral.config import Settings
from corral.engines.alerting import Alert, parse_rules
from corral.engines.backup import Policy, parse_policy
from corral.engines.costing import default_cost_model_text, load_cost_model
from corral.inventory.service import Inventory
from corral.metrics.store import DuckDBStore
from corral.security.token_store import TokenStore
from corral.services.alert_facts import FactReader
from corral.services.alerts import AlertService
from corral.store.backup_repo import Repository
from tests.backup.points import T0, make_point
from tests.inventory.conftest import edit_node, nodes  # noqa: F401  (fixture)

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)


def _sync(inventory: Inventory, nodes: Path) -> Inventory:  # noqa: F811
    inventory.add_host("a", f"test://{nodes / 'host-a.xml'}")
    inventory.add_host("b", f"test://{nodes / 'host-b.xml'}")
    inventory.sync()
    return inventory


def _cost_model(tmp_path: Path, entitlements: int) -> Path:
    data = yaml.safe_load(default_cost_model_text())
    data["licences"]["platform-support"]["entitlements"] = entitlements
    path = tmp_path / f"cost-{entitlements}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _reader(
    inv: Inventory,
    tmp_path: Path,
    cost: Path | None = None,
    policy: Policy | None = None,
    repo: Repository | None = None,
) -> FactReader:
    return FactReader(
        inv, load_cost_model(cost), policy or Policy(), repo or Repository(tmp_path / "repo")
    )


def _fire(
    inv: Inventory, tmp_path: Path, rules: str, reader: FactReader, now: float
) -> dict[str, Alert]:
    """Evaluate ``rules`` once, as the loop does; the stored alerts by ``rule:entity``."""
    store = DuckDBStore(str(tmp_path / "metrics.duckdb"))
    try:
        service = AlertService(inv.db, parse_rules(rules, "test rules"))
        service.evaluate_store(store, now, facts=reader)
        return {f"{a.rule}:{a.label('entity')}": a for a in service.alerts()}
    finally:
        store.close()


LICENCE_RULES = """
rules:
  - {name: licence-over, kind: licence}
  - {name: licence-near, kind: licence, when: warn}
"""


def test_a_licence_deployed_beyond_its_entitlements_fires(
    inventory: Inventory,
    nodes: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    inv = _sync(inventory, nodes)  # two hosts: platform-support is deployed twice
    over = _fire(
        inv, tmp_path, LICENCE_RULES, _reader(inv, tmp_path, _cost_model(tmp_path, 1)), 1e9
    )
    assert set(over) == {"licence-over:platform-support", "licence-near:platform-support"}
    alert = over["licence-over:platform-support"]
    assert alert.state.value == "firing" and alert.value == 2.0
    assert "2 deployed, more than the 1 owned" in alert.summary


def test_a_licence_at_its_limit_warns_and_one_with_room_is_quiet(
    inventory: Inventory,
    nodes: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    inv = _sync(inventory, nodes)
    at_limit = _reader(inv, tmp_path, _cost_model(tmp_path, 2))  # 2 of 2: >= 90 %, not over
    near = _fire(inv, tmp_path, LICENCE_RULES, at_limit, 1e9)
    assert set(near) == {"licence-near:platform-support"}
    assert "2 deployed, close to the 2 owned" in near["licence-near:platform-support"].summary
    roomy = _reader(inv, tmp_path, _cost_model(tmp_path, 10))
    after = _fire(inv, tmp_path, LICENCE_RULES, roomy, 1e9 + 60)
    assert [a.state.value for a in after.values()] == ["resolved"]


HA_RULES = "rules: [{name: ha-broken, kind: ha, failures: 1}]"


def test_ha_fires_when_a_host_can_no_longer_take_the_other_hosts_vms(
    inventory: Inventory,
    nodes: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    inv = _sync(inventory, nodes)
    assert _fire(inv, tmp_path, HA_RULES, _reader(inv, tmp_path), 1e9) == {}  # b takes a's VMs

    def shrink(node: etree._Element) -> None:
        node.find("memory").text = str(16 * 1024 * 1024)  # KiB: b can no longer hold db-01

    edit_node(nodes / "host-b.xml", shrink)
    inv.sync()
    found = _fire(inv, tmp_path, HA_RULES, _reader(inv, tmp_path), 1e9 + 60)
    assert set(found) == {"ha-broken:fleet", "ha-broken:a"}
    assert "tolerates 0 of the 1 host failure(s)" in found["ha-broken:fleet"].summary
    host_a = found["ha-broken:a"]
    assert host_a.label("host") == "a" and "if a fails, 1 VM(s)" in host_a.summary
    assert "db-01" in host_a.summary
    assert all(a.state.value == "firing" for a in found.values())


def test_backup_rpo_fires_for_a_stale_point_and_a_vm_never_backed_up(
    inventory: Inventory,
    nodes: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    inv = _sync(inventory, nodes)  # running: web-01, db-01 (on a), cache-01 (on b)
    repo = Repository(tmp_path / "repo")
    db01, web01 = (str(inv.find_vm(n).uuid) for n in ("db-01", "web-01"))
    make_point(repo, 1, None, vm=db01)  # taken at T0 + 1 h
    make_point(repo, 2, None, vm=web01)  # taken at T0 + 2 h
    policy = parse_policy(
        {"vms": {"db-01": {"rpo": "1h"}, "web-01": {"rpo": "4h"}, "cache-01": {"tier": "none"}}},
        "test policy",
    )
    rules = "rules: [{name: rpo, kind: backup_rpo, grace: 5m}]"
    now = (T0 + timedelta(hours=2, minutes=30)).timestamp()
    found = _fire(inv, tmp_path, rules, _reader(inv, tmp_path, policy=policy, repo=repo), now)
    assert set(found) == {"rpo:db-01"}  # 1.5 h old > 1 h + 5 min; web-01 within 4 h; no cache
    stale = found["rpo:db-01"]
    assert stale.label("host") == "a" and stale.value == pytest.approx(1.5)
    assert stale.state.value == "firing"

    every = parse_policy({"vms": {"db-01": {"rpo": "1h"}}}, "test policy")  # cache-01: 4 h
    found = _fire(inv, tmp_path, rules, _reader(inv, tmp_path, policy=every, repo=repo), now)
    assert set(found) == {"rpo:db-01", "rpo:cache-01"}
    assert found["rpo:cache-01"].summary == "cache-01 has no restore point (RPO 4 h)"
    assert found["rpo:cache-01"].label("host") == "b"


def test_the_api_evaluates_the_fact_rules_on_the_live_inventory(
    inventory: Inventory,
    nodes: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    inv = _sync(inventory, nodes)
    rules = tmp_path / "alerts.yaml"
    rules.write_text(LICENCE_RULES + "  - {name: ha-broken, kind: ha}\n")
    DuckDBStore(str(tmp_path / "metrics.duckdb")).close()
    settings = Settings(
        home=tmp_path / "home",
        database_url=inv.db.url.render_as_string(hide_password=False),
        metrics_url=f"duckdb://{tmp_path / 'metrics.duckdb'}",
        alert_rules=rules,
        cost_model=_cost_model(tmp_path, 1),
    )
    token = TokenStore(inv.db).create("fact-rules")
    app = create_app(inv, settings=settings)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        done = client.post("/api/v1/alerts/evaluate", json={"deliver": False})
        assert done.status_code == 200, done.text
        assert done.json()["conditions"] == 2  # platform-support: over, and so also near
        listed = client.get("/api/v1/alerts").json()["items"]
    assert sorted(a["rule"] for a in listed) == ["licence-near", "licence-over"]
    assert {a["labels"]["entity"] for a in listed} == {"platform-support"}
