"""Issue 15 item 4: the OpenAPI document says what the server does.

Every error is problem+json with the ``Problem`` schema, every success has a typed schema
(enums for states, date-times for times), every list is a ``Page`` (cursor + limit), and a
method a path does not take is a 405 naming every method it does take.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.api.deps import require
from corral.domain.access import Permission, Principal
from corral.inventory.service import Inventory

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
#: Ranked, not listed: ``n`` is the size of the ranking.
RANKINGS = {"/api/v1/metrics/top"}


@pytest.fixture
def doc(inventory: Inventory) -> dict[str, Any]:
    return TestClient(create_app(inventory)).get("/openapi.json").json()  # type: ignore[no-any-return]


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, ops in doc["paths"].items() for m, op in ops.items()]


def test_every_error_is_problem_json(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert set(doc["components"]["schemas"]["Problem"]["required"]) >= {"type", "status", "code"}
    for path, method, op in _operations(doc):
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                assert response["content"] == {
                    "application/problem+json": {"schema": PROBLEM_REF}
                }, (
                    path,
                    method,
                    status,
                )
        if op.get("security"):
            assert "401" in op["responses"], (path, method)
        if "requestBody" in op:
            assert {"413", "422"} <= set(op["responses"]), (path, method)


def test_every_success_is_typed_and_every_list_is_a_page(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for path, method, op in _operations(doc):
        ok = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert ok, (path, method)
        for status, response in ok.items():
            if status == "204":
                continue
            (media, body), *_ = response["content"].items()
            schema = body["schema"]
            assert schema, (path, method)
            if method == "get" and media == "application/json" and path not in RANKINGS:
                assert schema.get("type") != "array", f"{path} is a list, not a Page"
                if "$ref" in schema and schema["$ref"].split("/")[-1].startswith("Page_"):
                    page = schemas[schema["$ref"].split("/")[-1]]
                    assert {"items", "next_cursor", "total"} <= set(page["properties"])
                    names = {p["name"] for p in op["parameters"]}
                    assert {"limit", "cursor"} <= names, path
    assert schemas["VMPublic"]["properties"]["state"] == {"$ref": "#/components/schemas/VMState"}
    assert schemas["CaseRecord"]["properties"]["state"]["$ref"].endswith("/State")
    for model, field in (
        ("VMPublic", "created_at"),
        ("EventPublic", "at"),
        ("HostPublic", "last_sync_at"),
    ):
        prop = schemas[model]["properties"][field]
        formats = {prop.get("format")} | {alt.get("format") for alt in prop.get("anyOf", [])}
        assert "date-time" in formats, (model, field)


@pytest.mark.parametrize("method", ["TRACE", "PUT", "OPTIONS"])
def test_unsupported_methods_are_405_with_allow(inventory: Inventory, method: str) -> None:
    client = TestClient(create_app(inventory))
    doc = client.get("/openapi.json").json()
    for template, ops in doc["paths"].items():
        if method.lower() in ops:
            continue
        path = re.sub(r"\{[^}]+\}", "1", template)
        resp = client.request(method, path)
        assert resp.status_code == 405, (method, path, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        allowed = {m.strip() for m in resp.headers["allow"].split(",")}
        assert allowed >= {m.upper() for m in ops}, (path, allowed)


def test_each_app_gets_its_own_copy_and_a_new_route_is_guarded(inventory: Inventory) -> None:
    """The document is built once per process for the same routes (the guard reads it on an
    app's first request), but an app with one more route gets a document with that route, so
    the guard asks for a token there too; and no app can change another's document."""
    first, second = create_app(inventory), create_app(inventory)
    assert first.openapi() == second.openapi()
    assert first.openapi() is not second.openapi()
    first.openapi()["paths"].clear()
    assert second.openapi()["paths"]

    third = create_app(inventory)

    @third.get("/api/v1/added-later")
    def added_later(who: Annotated[Principal, require(Permission.vm_read)]) -> dict[str, str]:
        return {"who": who.user}

    doc = third.openapi()
    assert doc["paths"]["/api/v1/added-later"]["get"]["x-corral-permission"] == "vm.read"
    answer = TestClient(third).get("/api/v1/added-later")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
