"""Issue 10 item 1: every route x every role x own/other department, against route_matrix.yaml.

The routes come from the OpenAPI document of the real app, so a route added without a row in
the table fails ``test_every_route_has_a_row``. A cell says what a user holding only that role
(member of department red) gets:

- ``public``: no token needed (the answer is never 401/403);
- ``signed``: no token needed, the body's signature authenticates (the OpenAPI operation is
  marked ``x-corral-signed``): unsigned, as here, it answers 401 to everyone;
- ``allow``: allowed on every department's objects (never 401/403, never 404 for a real VM or case);
- ``own``: allowed on red's objects; blue's VM or case answers 404, and lists hold only red's;
- ``deny``: 403 whatever the object.

Every response to a requester or approver is also searched for blue's VM: 0 leaks. Regenerate
the table from the live policy with ``CORRAL_REGEN_MATRIX=1`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.api.deps import api_routes, declared_permission
from corral.domain.access import Permission, Principal, Reach, Role
from corral.security.signed_webhook import OPENAPI_MARK
from tests.auth.conftest import OTHER, OWN, VM_OTHER, VM_OWN, World

TABLE = Path(__file__).with_name("route_matrix.yaml")
SCOPED = (Role.requester.value, Role.approver.value)
#: Query parameters a route needs so that its answer concerns one department's object.
PROBES: dict[str, dict[str, str]] = {"GET /api/v1/events": {"vm": "{uuid}"}}


def operations(world: World) -> list[str]:
    doc = world.client.get("/openapi.json").json()
    return sorted(
        f"{method.upper()} {path}" for path, ops in doc["paths"].items() for method in ops
    )


def signed_operations(world: World) -> set[str]:
    doc = world.client.get("/openapi.json").json()
    return {
        f"{method.upper()} {path}"
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if op.get(OPENAPI_MARK)
    }


def expected_cell(permission: Permission | None, role: Role, signed: bool = False) -> str:
    if signed:
        return "signed"
    if permission is None:
        return "public"
    reach = Principal("x", frozenset({role}), frozenset({OWN})).reach(permission)
    return {None: "deny", Reach.department: "own", Reach.fleet: "allow"}[reach]


def regenerate(world: World) -> None:
    routes = {
        f"{method} {r.path_format}": declared_permission(r)
        for r in api_routes(world.client.app.routes)  # type: ignore[attr-defined]
        for method in sorted(r.methods or ())
    }
    signed = signed_operations(world)
    table = {
        op: {role.value: expected_cell(routes.get(op), role, op in signed) for role in Role}
        for op in operations(world)
    }
    TABLE.write_text(yaml.safe_dump(table, sort_keys=True))


def table() -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = yaml.safe_load(TABLE.read_text())
    return loaded


def test_every_route_has_a_row(world: World) -> None:
    if os.environ.get("CORRAL_REGEN_MATRIX"):
        regenerate(world)
    ops, rows = set(operations(world)), set(table())
    assert ops - rows == set(), f"routes without a row in {TABLE.name}: {sorted(ops - rows)}"
    assert rows - ops == set(), f"rows for routes that do not exist: {sorted(rows - ops)}"
    signed = signed_operations(world)
    for op, cells in table().items():
        assert set(cells) == {r.value for r in Role}, f"{op}: a cell per role"
        assert (set(cells.values()) == {"signed"}) == (op in signed), f"{op}: signed or not"


def _request(world: World, op: str, role: str, department: str) -> tuple[Any, bool]:
    """The answer to ``op`` aimed at ``department``'s objects; and whether it names one."""
    method, template = op.split(" ", 1)
    uuid = VM_OWN if department == OWN else VM_OTHER
    values = {
        "uuid": uuid,
        "case_id": str(world.cases[department]),
        "job_id": "0" * 32,
        "name": "no-such-host",
        "token": "no-such-token",
        "request_id": str(world.requests[department]),
        "department": department,
    }
    path = template
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    query = {k: v.replace("{uuid}", uuid) for k, v in PROBES.get(op, {}).items()}
    targeted = op in PROBES or any(
        key in template for key in ("{uuid}", "{case_id}", "{request_id}", "{department}")
    )
    body = {} if method in ("POST", "PATCH", "PUT") else None
    answer = world.client.request(
        method, path, params=query, json=body, headers=world.auth(role) if role else None
    )
    return answer, targeted


def _verdict(cell: str, department: str, targeted: bool, answer: Any) -> str | None:
    status = answer.status_code
    if cell == "signed":
        return None if status == 401 else f"wanted 401 for an unsigned request, got {status}"
    if cell == "deny":
        return None if status == 403 else f"wanted 403, got {status}"
    if status in (401, 403):
        return f"wanted access, got {status}"
    hidden = cell == "own" and department == OTHER and targeted
    if hidden and status != 404:
        return f"wanted 404 for the other department's object, got {status}"
    if targeted and not hidden and status == 404 and cell != "public":
        return f"wanted the object, got 404: {answer.text[:200]}"
    return None


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_every_cell_of_the_role_route_matrix(world: World) -> None:
    failures, cells, leaks = [], 0, []
    for op, row in table().items():
        for role, cell in row.items():
            for department in (OWN, OTHER):
                answer, targeted = _request(world, op, role, department)
                cells += 1
                bad = _verdict(cell, department, targeted, answer)
                if bad:
                    failures.append(f"{op} as {role} on {department}'s: {bad}")
                if role in SCOPED and VM_OTHER in answer.text:
                    leaks.append(f"{op} as {role} on {department}'s names blue's VM")
    print(f"role x route matrix: {cells} cells, {len(failures)} wrong, {len(leaks)} leaks")
    assert cells == len(table()) * len(Role) * 2
    assert not failures, "\n".join(failures)
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_without_a_token_only_public_routes_answer(world: World) -> None:
    for op, row in table().items():
        answer, _ = _request(world, op, "", OWN)
        public = set(row.values()) == {"public"}
        assert (answer.status_code == 401) != public, (op, answer.status_code)
