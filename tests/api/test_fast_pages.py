"""``GET /api/v1/vms`` answers pages encoded by orjson, not validated again by FastAPI against
``Page[VMPublic]`` (issue 16: pydantic's second pass cost a large share of each request at
300 requests a second). The bytes must stay what pydantic wrote for the same page: every page
of a random fleet (odd states, formula-looking text, unicode, times with and without
microseconds, tombstones) is compared byte for byte on both databases."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import update

from corral.api.app import create_app
from corral.api.pagination import Page
from corral.api.schemas import VMPublic
from corral.inventory.filters import VMFilter
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.security.token_store import TokenStore
from corral.store import models as m
from corral.store.db import Database
from tests.inventory.test_export_stream import _random_fleet


def _pydantic_bytes(page: Any) -> bytes:
    """What FastAPI answered before: the page validated as ``Page[VMPublic]``, then dumped."""
    body = {
        "items": [dataclasses.asdict(v) for v in page.items],
        "next_cursor": page.next_cursor,
        "total": page.total,
    }
    return Page[VMPublic].model_validate(body).model_dump_json().encode()


@pytest.mark.parametrize(
    "query",
    [
        {"sort": "name"},
        {"sort": "owner", "order": "desc", "deleted": "true"},
        {"sort": "created_at", "state": "running"},
    ],
)
def test_every_page_is_byte_for_byte_what_pydantic_wrote(
    db: Database, query: dict[str, str]
) -> None:
    inv = Inventory(db, SecretBox(Fernet.generate_key()))
    _random_fleet(inv, 60, seed=16)
    with db.session() as s:  # some times with microseconds, some without
        first = s.scalars(m.VM.__table__.select().with_only_columns(m.VM.uuid).limit(9)).all()
        moment = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
        s.execute(update(m.VM).where(m.VM.uuid.in_(first)).values(state_since=moment))
    client = TestClient(create_app(inv))
    auth = {"Authorization": f"Bearer {TokenStore(db).create('pages')}"}
    f = VMFilter(state=query.get("state"), only_deleted=query.get("deleted") == "true")
    cursor: str | None = None
    pages = 0
    while True:
        # the first page counted (asked), the others not
        params = {**query, "limit": "4", **({"cursor": cursor} if cursor else {"count": "true"})}
        resp = client.get("/api/v1/vms", params=params, headers=auth)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "application/json"
        expected = inv.list_vms(
            f,
            sort=query["sort"],
            descending=query.get("order") == "desc",
            limit=4,
            cursor=cursor,
            count=cursor is None,
        )
        assert resp.content == _pydantic_bytes(expected)
        pages += 1
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            break
    assert pages >= 2
