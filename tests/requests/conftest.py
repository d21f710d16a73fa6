"""A request service over a real database, a fleet file, the test rules and a real SMTP server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from corral.domain.access import Principal, Role
from corral.domain.requests import Size
from corral.engines.approval import ApprovalRules, load_rules
from corral.engines.costing import load_cost_model
from corral.engines.planning.model import Fleet, load_fleet
from corral.notify.mailer import Mailer
from corral.services.quotas import Prices, QuotaService
from corral.services.requests import RequestService, RequestSpec
from corral.services.users import UserService
from corral.store.db import Database
from tests.conftest import Clock

DATA = Path(__file__).with_name("data")
RED, BLUE = "red", "blue"
SMALL = Size(1, 1024, 10.0)  # 54.65 USD a month


def principal(user: str, *roles: Role, departments: tuple[str, ...] = (RED,)) -> Principal:
    return Principal(user, frozenset(roles), frozenset(departments))


ALICE = principal("alice", Role.requester)
ANN = principal("ann", Role.approver)
ARNO = principal("arno", Role.approver)
BOSS = principal("boss", Role.admin, departments=())


def spec(count: int = 1, size: Size = SMALL, environment: str = "dev", **kw: str) -> RequestSpec:
    values = {
        "template": "debian-12",
        "owner": "alice",
        "department": RED,
        "purpose": "load tests",
        **kw,
    }
    return RequestSpec(count=count, size=size, environment=environment, lease_days=30, **values)


@pytest.fixture
def fleet() -> Fleet:
    return load_fleet(DATA / "fleet.yaml")


@pytest.fixture
def rules() -> ApprovalRules:
    return load_rules(DATA / "rules.yaml")


@pytest.fixture
def prices() -> Prices:
    return Prices.of(load_cost_model())


MakeService = Callable[..., RequestService]


@pytest.fixture
def make_service(
    db: Database, fleet: Fleet, rules: ApprovalRules, prices: Prices, clock: Clock
) -> MakeService:
    def make(mailer: Mailer | None = None, **rule_changes: object) -> RequestService:
        chosen = replace(rules, **rule_changes) if rule_changes else rules
        return RequestService(db, chosen, prices, lambda: fleet, clock=clock, mailer=mailer)

    return make


@pytest.fixture
def service(make_service: MakeService) -> RequestService:
    return make_service()


@pytest.fixture
def quotas(db: Database, prices: Prices, clock: Clock) -> QuotaService:
    return QuotaService(db, prices, clock)


@pytest.fixture
def people(db: Database) -> UserService:
    users = UserService(db)
    users.add("alice", roles=["requester"], departments=[RED], email="alice@example.test")
    users.add("ann", roles=["approver"], departments=[RED], email="ann@example.test")
    users.add("arno", roles=["approver"], departments=[RED], email="arno@example.test")
    users.add("anonymous-approver", roles=["approver"], departments=[RED])
    users.add("bert", roles=["approver"], departments=[BLUE], email="bert@example.test")
    return users
