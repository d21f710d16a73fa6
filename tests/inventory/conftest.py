"""Fixtures for the inventory tests: both databases, a settable clock, node files in a tmp dir."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from lxml import etree
from sqlalchemy import text

from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.store.db import Database

NODES = Path(__file__).resolve().parents[1] / "fixtures" / "nodes"
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def _pg_url() -> str | None:
    url = os.environ.get("CORRAL_TEST_PG_URL")
    if not url:
        if os.environ.get("CORRAL_REQUIRE_PG"):
            pytest.fail("CORRAL_REQUIRE_PG is set but CORRAL_TEST_PG_URL is not")
        pytest.skip("PostgreSQL not configured: run 'bash scripts/pg.sh up' and export CORRAL_TEST_PG_URL")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'corral.db'}")
    else:
        database = Database(_pg_url() or "")
        with database.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def inventory(db: Database, clock: Clock) -> Inventory:
    return Inventory(db, SecretBox(Fernet.generate_key()), clock)


@pytest.fixture
def nodes(tmp_path: Path) -> Path:
    """A private copy of the node-file fixtures (the adapter writes back into them)."""
    dest = tmp_path / "nodes"
    shutil.copytree(NODES, dest)
    return dest


def edit_node(path: Path, change: Callable[[etree._Element], None]) -> None:
    """Change a node file in place, as if the host had changed."""
    tree = etree.parse(str(path))
    change(tree.getroot())
    tree.write(str(path))


def domain(node: etree._Element, name: str) -> etree._Element:
    for d in node.iterfind("domain"):
        if d.findtext("name") == name:
            return d
    raise KeyError(name)


def set_runstate(node: etree._Element, name: str, state: int) -> None:
    domain(node, name).find(f"{{{TEST_NS}}}runstate").text = str(state)
