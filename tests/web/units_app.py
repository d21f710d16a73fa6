"""An app that can deploy blueprints, for the blueprint and unit pages' tests.

The demo's hosts have no room in their pools for a new VM, so these pages run on the
provisioning tests' host (libvirt's test driver, tests/fixtures/provision/host-p.xml, with a
template image) and users of two departments: red (alice, requester; ann, approver) and blue
(bob, requester), plus an operator, an auditor and an administrator.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from fastapi import FastAPI

from corral.api.app import create_app
from corral.config import Settings
from corral.domain.access import Principal
from corral.domain.requests import RequestState, Size
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services.blueprints import BlueprintService
from corral.services.requests import RequestService, RequestSpec
from corral.services.templates import TemplateService
from corral.services.units import UnitService
from corral.services.users import UserService
from tests.freshdb import fresh_postgresql, fresh_sqlite
from tests.provision.conftest import HOST, NODE, TEMPLATE

PASSWORD = "a long pass phrase 42"
RULES = """
environments: [dev, test, prod]
production: [prod]
auto_approve: null
two_approvers: {production: true, min_monthly_cost: null}
ha_failures: 0
ha_breach: deny
max_lease_days: 90
expire: {pending_days: 5, approved_days: 3}
"""
PEOPLE = (
    ("alice", "requester", "red"),
    ("ann", "approver", "red"),
    ("bob", "requester", "blue"),
    ("olga", "operator", None),
    ("audrey", "auditor", None),
    ("ada", "admin", None),
)
LAB = {
    "name": "lab",
    "description": "a database and two web servers",
    "tiers": [
        {"name": "db", "template": TEMPLATE.name, "memory_mib": 512, "vcpus": 1},
        {"name": "web", "template": TEMPLATE.name, "memory_mib": 256, "count": 2, "order": 1},
    ],
}


@dataclass
class UnitsApp:
    app: FastAPI
    inv: Inventory
    node: Path

    @property
    def requests(self) -> RequestService:
        svc: RequestService = self.app.state.requests
        return svc

    @property
    def units(self) -> UnitService:
        svc: UnitService = self.app.state.provisioner.units
        return svc

    def principal(self, name: str) -> Principal:
        return UserService(self.inv.db).principal(name)

    def deploy(self, purpose: str = "tests") -> int:
        """alice's request for the lab blueprint, approved by ann and provisioned: its id."""
        spec = RequestSpec("", 1, Size(1, 1, 0.0), "alice", "red", purpose, "dev", 7, "lab")
        made = self.requests.create(spec, self.principal("alice"), submit=True)
        approved = self.requests.approve(made.id, self.principal("ann"))
        assert approved.state is RequestState.approved, approved.reasons
        done = self.app.state.provisioner.provision(made.id, "ann")
        assert done.state is RequestState.provisioned, done
        return made.id


def build_units_app(home: Path, db_url: str | None = None) -> UnitsApp:
    home.mkdir(parents=True, exist_ok=True)
    node = home / "host-p.xml"
    shutil.copy(NODE, node)
    rules = home / "rules.yaml"
    rules.write_text(RULES)
    db = fresh_postgresql(db_url) if db_url else fresh_sqlite(home / "corral.db")
    inv = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess(node_dir=home))
    inv.add_host(HOST, f"test://{node}")
    inv.sync()
    TemplateService(db).add(TEMPLATE)
    users = UserService(db)
    for name, role, department in PEOPLE:
        users.add(name, roles=[role], departments=[department] if department else [],
                  password=PASSWORD)  # fmt: skip
    BlueprintService(db).add_mapping(LAB, "tests", "ada")
    settings = Settings(home=home / "home", request_rules=rules, node_dir=home)
    return UnitsApp(create_app(inv, settings=settings), inv, node)
