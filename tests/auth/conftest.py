"""A fleet of two departments (red, blue) with one VM and one reclamation case each, and one
user with a token per role, all members of red; served by the real app on a real database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from corral.api.app import create_app
from corral.config import Settings
from corral.domain.access import Principal, Role
from corral.domain.requests import Size
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from corral.services.requests import RequestSpec
from corral.services.users import UserService
from corral.store import models as m
from tests.inventory.conftest import nodes  # noqa: F401  (fixture)

OWN, OTHER = "red", "blue"
VM_OWN = "0a000000-0000-4000-8000-000000000001"  # web-01, department red
VM_OTHER = "0a000000-0000-4000-8000-000000000002"  # db-01, department blue


@dataclass
class World:
    client: TestClient
    inventory: Inventory
    tokens: dict[str, str]  # role -> token of a user with only that role, in red
    cases: dict[str, int]  # department -> an open reclamation case of its VM
    requests: dict[str, int]  # department -> a draft VM request of its

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def build_world(inventory: Inventory, node_dir: Path, home: Path) -> World:
    inventory.add_host("host-a", f"test://{node_dir / 'host-a.xml'}")
    inventory.sync()
    with inventory.db.session() as s:
        for uuid, dept in ((VM_OWN, OWN), (VM_OTHER, OTHER)):
            s.execute(update(m.VM).where(m.VM.uuid == uuid).values(department=dept))
    users, store = UserService(inventory.db), TokenStore(inventory.db)
    tokens = {}
    for role in Role:
        users.add(f"{role.value}-1", roles=[role.value], departments=[OWN])
        tokens[role.value] = store.create(f"{role.value}-token", f"{role.value}-1")
    app = create_app(inventory, store, settings=Settings(home=home))
    cases = {
        dept: app.state.reclaim.flag(uuid, category="idle", reason="test", actor="setup").id
        for uuid, dept in ((VM_OWN, OWN), (VM_OTHER, OTHER))
    }
    requests = {dept: _draft_request(app, dept) for dept in (OWN, OTHER)}
    return World(TestClient(app), inventory, tokens, cases, requests)


def _draft_request(app: Any, department: str) -> int:
    """A draft request of ``department``, made by a user of no role here."""
    spec = RequestSpec("debian-12", 1, Size(1, 1024, 0), "owner", department, "p", "dev", 7)
    setup = Principal("setup", frozenset({Role.admin}), frozenset())
    return int(app.state.requests.create(spec, setup).id)


@pytest.fixture
def world(inventory: Inventory, nodes: Path, tmp_path: Path) -> Iterator[World]:  # noqa: F811
    w = build_world(inventory, nodes, tmp_path / "home")
    yield w
    w.client.app.state.jobs.shutdown(wait=True)  # type: ignore[attr-defined]
